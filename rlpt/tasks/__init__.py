"""Prompt sources: synthetic verifiable tasks generated on the fly, and datasets."""

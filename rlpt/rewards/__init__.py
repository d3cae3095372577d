"""Rewards: on-device verifiable rewards for synthetic tasks, and host-side rewards."""

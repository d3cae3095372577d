"""Algorithms, one file each: `rlpt/algorithms/<name>.py` defines the `Algorithm` record (base.py)
registered as `name`, with its loss, paper defaults, declared dynamic hyperparameters, its own
shapings and hooks. Nothing imports them from a list: `registry.get("algorithm", name)` imports
`rlpt.algorithms.<name>` (rlpt.registry), so adding an algorithm is adding its file and its test.

Shared here: base.py (the Algorithm and Piece records, the chain, the config view), common.py
(token-row packing). Features shared by several algorithms are pieces in rlpt/pieces/.
"""

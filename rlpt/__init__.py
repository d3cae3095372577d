"""rlpt: reinforcement-learning post-training of language models in JAX.

One RL iteration (sample -> reward -> advantages -> loss -> optimizer update) is one compiled
XLA program; see README.md and ../shared/DESIGN.md.
"""

__version__ = "0.1.0"

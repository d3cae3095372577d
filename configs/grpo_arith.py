"""The default experiment (README command 1): SFT warm-up, then GRPO on 2-digit addition.

    python -m rlpt.train --config=configs/grpo_arith.py --workdir=runs/grpo_arith
    python -m rlpt.train --config=configs/grpo_arith.py:size=small,seed=1 --workdir=...
    python -m rlpt.sweep --config=configs/grpo_arith.py:seeds=5,lrs=5e-4 --workdir=runs/sweep

Arguments (after ':'): size (a model preset), seed, quick (1 = a 1-minute smoke version);
for `get_sweep` also seeds (how many, from 0) and lrs (RL learning rates, '/'-separated).
"""
from configs.recipes import arithmetic_run
from rlpt.config import base_config, parse_arg

ARGS = dict(size="tiny", seed=0, quick=0, seeds=3, lrs="5e-4/1e-3")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = base_config("grpo")
    arithmetic_run(c, a, rl_steps=1000, rl_batch_size=32, eval_every=250)
    c.algo.beta = 0.04
    return c


def get_sweep(arg: str = ""):
    """Seeds x RL learning rate (`python -m rlpt.sweep`): one vmapped program per size."""
    from rlpt.sweep.points import axis, product, seeds
    a = parse_arg(arg, **ARGS)
    lrs = [float(x) for x in a["lrs"].split("/") if x]
    return product(axis("config.optim.lr", lrs), seeds(a["seeds"]))

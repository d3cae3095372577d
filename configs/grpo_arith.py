"""The default experiment (README command 1): SFT warm-up, then GRPO on 2-digit addition.

    python -m rlpt.train --config=configs/grpo_arith.py --workdir=runs/grpo_arith
    python -m rlpt.train --config=configs/grpo_arith.py:size=small,seed=1 --workdir=...

Arguments (after ':'): size (a model preset), seed, quick (1 = a 1-minute smoke version).
"""
from rlpt.config import arithmetic_run, base_config, parse_arg


def get_config(arg: str = ""):
    a = parse_arg(arg, size="tiny", seed=0, quick=0)
    c = base_config("grpo")
    arithmetic_run(c, a, rl_steps=1000, rl_batch_size=32, eval_every=250)
    c.algo.beta = 0.04
    return c

"""The default experiment (README command 1): SFT warm-up, then GRPO on 2-digit addition.

    python -m rlpt.train --config=configs/grpo_arith.py --workdir=runs/grpo_arith
    python -m rlpt.train --config=configs/grpo_arith.py:size=small,seed=1 --workdir=...

Arguments (after ':'): size (a model preset), seed, quick (1 = a 1-minute smoke version).
"""
from rlpt.config import base_config, parse_arg


def get_config(arg: str = ""):
    a = parse_arg(arg, size="tiny", seed=0, quick=0)
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=2)
    c.sampling.max_new_tokens = 5
    c.sampling.num_samples = 8
    c.algo.beta = 0.04
    c.rl.steps = 1000
    c.rl.batch_size = 32
    c.optim.lr = 5e-4
    c.sft.steps = 500
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = 250
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 6, 10, 3, 32
        c.log_every = c.ckpt_every = 3
    return c

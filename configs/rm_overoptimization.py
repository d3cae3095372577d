"""Reward over-optimisation and the KL term (Gao et al., arXiv 2210.10760; issue 27, claim 7):
GRPO against a learned reward model, its score against the true task accuracy over training, for
KL weights beta in {0, 0.01, 0.04, 0.1} (experiments/rm_overoptimization/).

    # 1. the proxy: a Bradley-Terry reward model on gold-vs-corrupted addition answers
    python -m rlpt.train --config=configs/rm_arith.py:kind=bt --workdir=runs/rm_overopt_rm
    # 2. GRPO against it, every beta x seeds as one vmapped program
    python -m rlpt.sweep --config=configs/rm_overoptimization.py --workdir=runs/rm_overopt

The policy is the recipe of configs/grpo_arith.py (1-2 digit addition, SFT 500 x 64, then GRPO
with 32 prompts x 8 samples of 5 new tokens, lr 5e-4) for `steps` RL steps, with the reward
model's score as the reward (`reward.kind="reward_model"`, rlpt.build.learned_reward_model).
The task's own reward is computed beside it and never optimised: the RL rows log
`reward_rm_score` (the proxy) and `accuracy` / `reward_true_reward` (the truth), and the
held-out evaluation scores the true task.

Arguments (after ':'): seed, seeds (get_sweep), betas ('/'-separated), steps, rm (the reward
model's workdir), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(seed=0, seeds=5, betas="0/0.01/0.04/0.1", steps=500, rm="runs/rm_overopt_rm",
            quick=0)


def get_config(arg: str = ""):
    from configs import grpo_arith
    a = parse_arg(arg, **ARGS)
    c = grpo_arith.get_config(f"seed={a['seed']},quick={a['quick']}")
    c.reward.kind = "reward_model"
    c.reward.rm_workdir = a["rm"]
    if not a["quick"]:
        c.rl.steps, c.eval.every, c.ckpt_every = a["steps"], 50, 100
    c.algo.beta = float(str(a["betas"]).split("/")[0])
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """betas x seeds 0..seeds-1: one vmapped program (beta is a dynamic hyperparameter)."""
    from rlpt.sweep.points import axis, product, seeds
    a = parse_arg(arg, **ARGS)
    betas = [float(x) for x in str(a["betas"]).split("/") if x]
    return product(axis("config.algo.beta", betas), seeds(a["seeds"]))

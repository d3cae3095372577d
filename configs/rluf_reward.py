"""RLUF (arXiv 2505.14946; issue 27, claim 6): a reward model of a "love" signal (implicit user
feedback, present on few responses and noisy) as the RL reward, against the task reward itself.

    # 1. the reward model of the love signal (rlpt/algorithms/rm_rluf.py: the response is
    #    "loved" with probability 0.8 if correct, 0.1 if not; binary cross-entropy on it)
    python -m rlpt.train --config=configs/rm_arith.py:kind=rluf --workdir=runs/rluf_rm
    # 2. GRPO against it and against the task reward, arms x seeds
    python -m rlpt.sweep --config=configs/rluf_reward.py --workdir=runs/rluf_reward

The policy is the recipe of configs/grpo_arith.py (1-2 digit addition, SFT 500 x 64, then GRPO
with 32 prompts x 8 samples of 5 new tokens, lr 5e-4, beta 0.04: that config's KL weight) for
`steps` RL steps. Arms:
- `task`: the task's exact-answer reward;
- `love_rm`: the love reward model's score (`reward.kind="reward_model"`,
  rlpt.build.learned_reward_model); the task reward is logged beside it (`accuracy`) and scores
  the held-out evaluation.
Both arms of a seed start from the same SFT model.

Arguments (after ':'): arm, seed, seeds (get_sweep), steps, beta, rm (the love reward model's
workdir), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(arm="task", seed=0, seeds=5, steps=500, beta=0.04, rm="runs/rluf_rm", quick=0)


def arms(a: dict) -> dict:
    return {"task": {"config.reward.kind": "device"},
            "love_rm": {"config.reward.kind": "reward_model"}}


def get_config(arg: str = ""):
    from configs import grpo_arith
    a = parse_arg(arg, **ARGS)
    c = grpo_arith.get_config(f"seed={a['seed']},quick={a['quick']}")
    c.reward.kind = arms(a)[a["arm"]]["config.reward.kind"]
    c.reward.rm_workdir = a["rm"]   # read only by the love_rm arm
    c.algo.beta = float(a["beta"])
    if not a["quick"]:
        c.rl.steps, c.eval.every, c.ckpt_every = a["steps"], 50, 100
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped program per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product(list(arms(a).values()), seeds(a["seeds"]))

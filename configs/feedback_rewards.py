"""Reward models of feedback instead of labels, as the RL reward, against the task reward (issue
27): RLUF (arXiv 2505.14946, claim 6), a reward model of a "love" signal (implicit user
feedback, noisy, on few responses), and RLSF (arXiv 2507.21931, claim 5), a reward model of the
policy's own confidence (no labels at all), with the greedy answers' calibration measured
before and after RL (`eval.calibration`: ece, confidence_auc).

    # 1. the reward models (rlpt/algorithms/rm_rluf.py: "loved" with probability 0.8 if
    #    correct, 0.1 if not; rm_rlsf.py: pairs of the SFT policy's samples ordered by their
    #    confidence, kept when the more confident one reaches 0.9)
    python -m rlpt.train --config=configs/rm_arith.py:kind=rluf --workdir=runs/rluf_rm
    python -m rlpt.train --config=configs/rm_arith.py:kind=rlsf --workdir=runs/rlsf_rm
    # 2. GRPO against each and against the task reward, arms x seeds
    python -m rlpt.sweep --config=configs/feedback_rewards.py --workdir=runs/feedback_rewards

The policy is the recipe of configs/grpo_arith.py (1-2 digit addition, SFT 500 x 64, then GRPO
with 32 prompts x 8 samples of 5 new tokens, lr 5e-4, beta 0.04: that config's KL weight) for
`steps` RL steps. Arms:
- `task`: the task's exact-answer reward;
- `love_rm`: the RLUF reward model's score (`reward.kind="reward_model"`);
- `self_rm`: the RLSF reward model's score.
With a reward model the task reward is logged beside it (`accuracy`) and scores the held-out
evaluation. Every arm of a seed starts from the same SFT model.

Arguments (after ':'): arm, seed, seeds (get_sweep), arms ('/'-separated), steps, beta,
love_rm / self_rm (the reward models' workdirs), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(arm="task", seed=0, seeds=5, arms="task/love_rm/self_rm", steps=500, beta=0.04,
            love_rm="runs/rluf_rm", self_rm="runs/rlsf_rm", quick=0)


def arms(a: dict) -> dict:
    """arm -> its overrides (both keys in every arm)."""
    return {"task": {"config.reward.kind": "device", "config.reward.rm_workdir": ""},
            "love_rm": {"config.reward.kind": "reward_model",
                        "config.reward.rm_workdir": a["love_rm"]},
            "self_rm": {"config.reward.kind": "reward_model",
                        "config.reward.rm_workdir": a["self_rm"]}}


def get_config(arg: str = ""):
    from configs import grpo_arith
    a = parse_arg(arg, **ARGS)
    c = grpo_arith.get_config(f"seed={a['seed']},quick={a['quick']}")
    over = arms(a)[a["arm"]]
    c.reward.kind = over["config.reward.kind"]
    c.reward.rm_workdir = over["config.reward.rm_workdir"]
    c.algo.beta = float(a["beta"])
    c.eval.calibration = True
    if not a["quick"]:
        c.rl.steps, c.eval.every, c.ckpt_every = a["steps"], 50, 100
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped program per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([arms(a)[x] for x in a["arms"].split("/") if x], seeds(a["seeds"]))

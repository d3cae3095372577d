"""A mixed verifiable + preference reward (Lanchantin et al., arXiv 2506.21495; issue 27, claim 4's
second half): does RL on a verifiable task (rule reward) and a "non-verifiable" one (a reward
model's score) in one run do better on both than RL on either alone?
(experiments/mixed_reward/)

    # 1. the reward model of the non-verifiable task: Bradley-Terry on gold vs corrupted products
    python -m rlpt.train --config=configs/mixed_reward.py:what=rm --workdir=runs/mixed_rm
    # 2. GRPO, the four arms x seeds
    python -m rlpt.sweep --config=configs/mixed_reward.py --workdir=runs/mixed_reward

The task is configs/domain_transfer.py's `transfer` task: 1-2 digit addition (component 0, the
verifiable task: the exact-answer rule) and 1-2 x 1 digit multiplication (component 1, standing
for the non-verifiable task: during RL only the reward model sees it; its exact answer is used
for evaluation alone). The warm-up is that config's (the tiny model from scratch, SFT 500 x 64 on
both components, lr 1e-3), shared by every arm of a seed; then `rl_steps` GRPO steps of 16
prompts x 8 samples (lr 5e-4, beta 0.04), with `reward.rm_component = 1` (rlpt.rewards.mixed):
component 1's rows are scored by the reward model, component 0's by the rule. The arms differ
only in which prompts RL draws (`task.kwargs.train`) and, for the control, the reward:
- `verifiable`: addition only (train 0), the rule;
- `preference`: multiplication only (train 1), the reward model;
- `mixed`: both in equal shares (train -1), each with its own reward;
- `mixed_rule`: both in equal shares, the rule on both (a multi-task control with no reward model:
  what the reward model costs the mixed arm).
Every arm samples the same number of responses per step.

The reward model (`what=rm`, rlpt.preference.train in mode reward_model): configs/rm_arith.py's
Bradley-Terry recipe (1000 updates from the RM's own SFT warm-up on both components) on pairs of
the multiplication component (gold product vs a 1-3 character corruption), with the transfer
task's widths so it reads the policy's rows as they are.

Arguments (after ':'): what (rm | rl), seed, seeds (get_sweep), rl_steps, arms ('/'-separated),
rm (the reward model's workdir), quick.
"""
from configs.domain_transfer import COMPONENTS
from configs.domain_transfer import get_config as domain_transfer_config
from rlpt.config import parse_arg

ARGS = dict(what="rl", seed=0, seeds=5, rl_steps=200, arms="verifiable/preference/mixed/mixed_rule",
            rm="runs/mixed_rm", quick=0)
ARMS = {"verifiable": {"config.task.kwargs.train": 0},
        "preference": {"config.task.kwargs.train": 1},
        "mixed": {"config.task.kwargs.train": -1},
        "mixed_rule": {"config.task.kwargs.train": -1, "config.reward.kind": "device",
                       "config.reward.rm_component": -1}}


def rm_config(a: dict):
    from configs.rm_arith import get_config as rm_arith_config
    c = rm_arith_config(f"kind=bt,seed={a['seed']},quick={a['quick']}")
    c.task.name = "transfer"
    c.task.kwargs = dict(components=COMPONENTS, train=1)   # pairs of products
    c.wandb.mode = "disabled"
    return c


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    if a["what"] == "rm":
        return rm_config(a)
    if a["what"] != "rl":
        raise ValueError(f"mixed_reward: what={a['what']!r}; expected 'rl' or 'rm'")
    c = domain_transfer_config(f"seed={a['seed']},rl_steps={a['rl_steps']},quick={a['quick']}")
    c.task.kwargs.train = -1
    c.reward.kind = "reward_model"
    c.reward.rm_workdir = a["rm"]
    c.reward.rm_component = 1
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1 (one vmapped program per arm)."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    chosen = [x for x in str(a["arms"]).split("/") if x]
    unknown = [x for x in chosen if x not in ARMS]
    if unknown:
        raise ValueError(f"mixed_reward: arms {unknown} unknown; known: {list(ARMS)}")
    return product([ARMS[x] for x in chosen], seeds(a["seeds"]))

"""RLUF (issue 27, claim 6), from a sweep of configs/rluf_reward.py:

    python experiments/rluf_reward/analyze.py runs/rluf_reward [--out DIR]

An arm is the reward GRPO optimises: `task` (the exact-answer reward) or `love_rm` (a reward
model of a noisy "love" signal); both arms of a seed start from the same SFT model. Per seed,
against `task` (experiments.analysis.proxy_truth_table): from the RL rows, the optimised reward
(`reward_mean`), the true accuracy of the samples (`accuracy`: the task's, logged beside the
reward model's score) and the KL to the SFT model, early (the first 10% of RL steps) and late
(the last 25%); held-out greedy accuracy after SFT, at its best during RL and after RL, and
pass@1 after RL. Writes `results.md`, `results.json` and `results.png`.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, load_arms, plot_proxy_truth, proxy_truth_table)

RL_METRICS = [("reward_mean", "optimised reward (train)", 3),
              ("accuracy", "true train accuracy (task reward)", 3),
              ("kl", "KL to the SFT model (k3, per token)", 4)]


def arm_of(overrides, cfg):
    return "love_rm" if cfg["reward"]["kind"] == "reward_model" else "task"


load = functools.partial(load_arms, arm_of=arm_of, known=("task", "love_rm"))


def arms_of(runs):
    return [a for a in ("task", "love_rm") if a in runs]


def table(runs):
    return proxy_truth_table(runs, arms_of(runs), RL_METRICS)


def plot(runs, data, path):
    plot_proxy_truth(runs, arms_of(runs), data, RL_METRICS,
                     "GRPO on the task reward vs on a reward model of a love signal (thin: "
                     "seeds, smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

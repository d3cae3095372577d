"""Reward models of feedback as the RL reward (issue 27, claims 5 and 6), from a sweep of
configs/feedback_rewards.py:

    python experiments/feedback_rewards/analyze.py runs/feedback_rewards [--out DIR]

An arm is the reward GRPO optimises: `task` (the exact-answer reward), `love_rm` (RLUF: a reward
model of a noisy "love" signal) or `self_rm` (RLSF: a reward model of the policy's own
confidence); every arm of a seed starts from the same SFT model. Per seed, against `task`
(experiments.analysis.proxy_truth_table): from the RL rows, the optimised reward, the true
accuracy of the samples (the task's, logged beside a reward model's score) and the KL to the SFT
model, early (the first 10% of RL steps) and late (the last 25%); held-out greedy accuracy after
SFT, at its best during RL and after RL, pass@1 after RL; and the greedy answers' calibration
after SFT and after RL (`ece`, `confidence`, `confidence_auc`: rlpt.evaluation.metrics
.calibration). Writes `results.md`, `results.json` and `results.png`.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, heldout_rows, load_arms, plot_proxy_truth, proxy_truth_table)

ARMS = ("task", "love_rm", "self_rm")
RL_METRICS = [("reward_mean", "optimised reward (train)", 3),
              ("accuracy", "true train accuracy (task reward)", 3),
              ("kl", "KL to the SFT model (k3, per token)", 4)]
CALIBRATION = ["ece", "confidence", "confidence_auc"]


def arm_of(overrides, cfg):
    r = cfg["reward"]
    if r["kind"] != "reward_model":
        return "task"
    return "love_rm" if "rluf" in r["rm_workdir"] else "self_rm"


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def arms_of(runs):
    return [a for a in ARMS if a in runs]


def table(runs):
    return proxy_truth_table(runs, arms_of(runs), RL_METRICS,
                             heldout_rows(CALIBRATION, ["after_sft", "after_rl"]))


def plot(runs, data, path):
    plot_proxy_truth(runs, arms_of(runs), data, RL_METRICS,
                     "GRPO on the task reward vs on reward models of feedback (thin: seeds, "
                     "smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

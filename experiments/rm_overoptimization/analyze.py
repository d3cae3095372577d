"""Reward over-optimisation and the KL term (arXiv 2210.10760) from a sweep of
configs/rm_overoptimization.py:

    python experiments/rm_overoptimization/analyze.py runs/rm_overopt [--out DIR]

An arm is a KL weight (`beta=0.04`); every arm of a seed starts from the same SFT model. Per
seed, against beta = 0: from the RL rows, the reward model's score of the sampled responses (the
proxy, `reward_rm_score`), the true train accuracy (`accuracy`, the task reward) and the KL to the
SFT model (`kl`; not logged at beta = 0, where no reference is kept: nan), each over an early window (the first
10% of RL steps) and a late one (the last 25%); from the held-out evaluations (the true task),
greedy accuracy after SFT, at its best evaluation during RL, after RL, and the drop from the best
to the end (over-optimisation shows as a drop while the proxy still rises). Writes `results.md`
(mean and 95% Student-t interval over seeds per arm, and of the per-seed difference arm - beta
0), `results.json` and `results.png` (proxy, truth, KL and held-out curves per arm).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, load_arms, plot_proxy_truth, proxy_truth_table)

RL_METRICS = [("reward_rm_score", "reward-model score of samples (proxy)", 3),
              ("accuracy", "true train accuracy (task reward)", 3),
              ("kl", "KL to the SFT model (k3, per token)", 4)]


def arm_of(overrides, cfg):
    return f"beta={cfg['algo']['beta']:g}"


load = functools.partial(load_arms, arm_of=arm_of)


def arms_of(runs):
    return sorted(runs, key=lambda a: float(a.split("=")[1]))


def table(runs):
    return proxy_truth_table(runs, arms_of(runs), RL_METRICS)


def plot(runs, data, path):
    plot_proxy_truth(runs, arms_of(runs), data, RL_METRICS,
                     "GRPO against a learned reward model: proxy score, true accuracy and KL "
                     "(thin: seeds, smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

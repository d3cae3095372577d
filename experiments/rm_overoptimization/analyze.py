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

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, last_rl_step, load_arms, rl_window_rows, save_figure,
    seed_curves_figure, summary_value)

RL_METRICS = [("reward_rm_score", "reward-model score of samples (proxy)", 3),
              ("accuracy", "true train accuracy (task reward)", 3),
              ("kl", "KL to the SFT model (k3, per token)", 4)]


def arm_of(overrides, cfg):
    return f"beta={cfg['algo']['beta']:g}"


load = functools.partial(load_arms, arm_of=arm_of)


def arms_of(runs):
    return sorted(runs, key=lambda a: float(a.split("=")[1]))


def best_eval(run, key="greedy_acc"):
    return max(r[key] for r in run["eval"] if r["step"] > 0)


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    rows = rl_window_rows(steps, RL_METRICS) + [
        ("held-out greedy accuracy after SFT",
         lambda run: summary_value(run, "after_sft", "greedy_acc"), 3),
        ("held-out greedy accuracy, best evaluation during RL", best_eval, 3),
        ("held-out greedy accuracy after RL",
         lambda run: summary_value(run, "after_rl", "greedy_acc"), 3),
        ("held-out greedy accuracy: after RL - best", lambda run: summary_value(
            run, "after_rl", "greedy_acc") - best_eval(run), 3),
        ("held-out pass@1 after RL", lambda run: summary_value(run, "after_rl", "pass@1"), 3)]
    labels = {a: a for a in arms}
    text, data = comparison_table(runs, arms, labels, rows, arms[0],
                                  f"RL steps {steps}; early = the first 10%, late = the last "
                                  "25%; ")
    data["steps"] = steps
    return text, data


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    fig, axes = seed_curves_figure(runs, arms, data["seeds"],
                                   [(k, name) for k, name, _ in RL_METRICS], {a: a for a in arms},
                                   colors, 1)
    ax = axes[-1]
    for a in arms:
        ev = [sorted(runs[a][s]["eval"], key=lambda r: r["step"]) for s in data["seeds"]]
        x = [r["step"] for r in ev[0]]
        ax.plot(x, np.mean([[r["greedy_acc"] for r in e] for e in ev], axis=0), marker="o",
                color=colors[a], label=f"{a} (mean of {len(ev)})")
    ax.set(title="held-out greedy accuracy (true task)", xlabel="RL step",
           ylabel="accuracy (fraction)")
    ax.legend()
    save_figure(fig, "GRPO against a learned reward model: proxy score, true accuracy and KL "
                "(thin: seeds, smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""Entropy and pass@k of GTPO and GRPO-S against GRPO, from a sweep of configs/gtpo_entropy.py:

    python experiments/gtpo_entropy/analyze.py runs/gtpo_entropy runs/gtpo_entropy_joint \
        [--out DIR]

(the second sweep, `norm=joint`, adds the arms "GTPO joint" and "GRPO-S joint"; DIR defaults
to runs/gtpo_entropy/analysis/, under the first sweep).

Per seed: the RL rows' `entropy_sampled` (mean entropy, in nats, of the policy's distribution at
each sampled response token), train `accuracy` and `response_len` averaged over an early window
(the first 10% of RL steps) and a late one (the last 25%) (experiments.analysis.early_late); the
held-out greedy accuracy and pass@k after SFT and after RL (summary.json). Writes `results.md`
(mean and 95% Student-t interval over seeds per arm, and of the per-seed difference arm - GRPO:
the arms of a seed start from the same SFT model), `results.json` and `results.png`.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, load_arms, plot_pass_at_k, rl_window_rows,
    save_figure, seed_curves_figure)

ARMS = ("grpo", "gtpo", "grpo_s", "gtpo/joint", "grpo_s/joint")
LABEL = {"grpo": "GRPO", "gtpo": "GTPO", "grpo_s": "GRPO-S", "gtpo/joint": "GTPO joint",
         "grpo_s/joint": "GRPO-S joint"}
COLOR = {"grpo": "tab:blue", "gtpo": "tab:red", "grpo_s": "tab:green", "gtpo/joint": "tab:orange",
         "grpo_s/joint": "tab:olive"}


def arm_of(overrides, cfg):
    """The algorithm's name; a GTPO / GRPO-S arm whose entropy_shaping_norm is not the default
    `separate` is the arm `<algo>/<norm>`."""
    arm, norm = cfg["algo"]["name"], cfg["algo"].get("entropy_shaping_norm")
    return f"{arm}/{norm}" if arm in ("gtpo", "grpo_s") and norm != "separate" else arm


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    metrics = [("entropy_sampled", "entropy of sampled tokens (nats)", 3),
               ("accuracy", "train accuracy (sampled)", 3),
               ("response_len", "response length (tokens)", 1)]
    return arms_table(runs, [a for a in ARMS if a in runs], LABEL, "grpo",
                      lambda steps: rl_window_rows(steps, metrics))


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms, data["seeds"],
                                   [("entropy_sampled", "entropy of sampled tokens (nats)"),
                                    ("accuracy", "train accuracy (sampled)")], LABEL, COLOR, 1)
    plot_pass_at_k(axes[2], data, arms, LABEL, COLOR, "grpo")
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

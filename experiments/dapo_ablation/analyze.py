"""GRPO built up to DAPO one component at a time, from a sweep of configs/dapo_ablation.py:

    python experiments/dapo_ablation/analyze.py runs/dapo_ablation [--out DIR]

(DIR defaults to runs/dapo_ablation/analysis/.)

Per seed (experiments.analysis): the RL rows' train accuracy, entropy of the sampled tokens,
response length, clipped-token fraction (`clip_frac`), the share of groups whose rewards are all
equal (`zero_adv_group_frac`: no signal, what dynamic sampling masks) and the truncated fraction,
early (the first 10% of RL steps) and late (the last 25%); held-out greedy accuracy and pass@k
after SFT, half-way and after RL. Writes `results.md` (mean and 95% Student-t interval over seeds
per arm, and of the per-seed difference arm - GRPO: the arms of a seed share one SFT model),
`results.json` and `results.png`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, load_runs, plot_pass_at_k, rl_window_rows,
    save_figure, seed_curves_figure)
from experiments.lr_grid import LR  # noqa: E402
from rlpt.config import config_file  # noqa: E402
from rlpt.sweep.points import point_name  # noqa: E402

CONFIG = config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                  "configs", "dapo_ablation.py"))
ARMS = tuple(name for name, _ in CONFIG.STEPS)
LABELS = {"grpo": "GRPO", "clip_higher": "+ clip-higher", "token_mean": "+ token-mean loss",
          "overlong": "+ overlong shaping", "dapo": "+ dynamic sampling (DAPO)"}
COLORS = dict(zip(ARMS, ["tab:blue", "tab:cyan", "tab:green", "tab:orange", "tab:red"]))
RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3),
              ("response_len", "response length (tokens)", 1),
              ("clip_frac", "clipped token fraction", 4),
              ("zero_adv_group_frac", "groups with all-equal rewards", 3)]


def grid_arm(overrides, cfg=None):
    """The arm of a point's name without its seed and learning rate: point_name of the arm's
    overrides (also experiments/lr_grid.py's arm naming for this experiment's grid)."""
    by_prefix = {point_name(o): name for name, o in CONFIG.arms().items()}
    return by_prefix[LR.sub("", overrides).strip(",")]


def load(sweep_dir):
    """Runs by arm name (grid_arm); a sweep of one rate of the grid reads as the others."""
    runs = load_runs(sweep_dir, arm_pattern=r"^(.*),seed=\d+$")
    return {grid_arm(prefix): by_seed for prefix, by_seed in runs.items()}


def table(runs):
    return arms_table(runs, [a for a in ARMS if a in runs], LABELS, "grpo",
                      lambda steps: rl_window_rows(steps, RL_METRICS)
                      + rl_window_rows(steps, [("stopped_frac", "truncated fraction", 3)],
                                       ["late"]))


def plot(runs, data, path):
    arms_ = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms_, data["seeds"],
                                   [m[:2] for m in RL_METRICS[:2]] + [RL_METRICS[3][:2]],
                                   LABELS, COLORS, 1)
    plot_pass_at_k(axes[-1], data, arms_, LABELS, COLORS, "grpo")
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""Response length and accuracy of GRPO with and without the Kimi k1.5 length reward, from a
sweep of configs/kimi_length.py:

    python experiments/kimi_length/analyze.py runs/kimi_length [--out experiments/kimi_length]
    python experiments/kimi_length/analyze.py runs/kimi_length_k15 --stem results_k15

Per seed (rlpt.sweep_analysis): the RL rows' mean response length, the length of correct and of
incorrect responses and each minus its problem's own worked-solution length (negative = a chain
shorter than the worked one), the truncated fraction and the train accuracy, over an early
window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy accuracy and
pass@k after SFT and after RL. Writes `results.md` (mean and 95% Student-t interval over seeds
per arm and of the per-seed difference length reward - GRPO: both arms of a seed start from the
same SFT model), `results.json` and `results.png`.
"""
import functools

import matplotlib

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, comparison_table, early_late,
                                 heldout_rows, last_rl_step, length_rows, load_runs, pass_ks,
                                 plot_seed_curves, rl_value, save_figure, windowed)

ARMS = ("none", "kimi_length_penalty")   # the algo.shaping of the points
NAMES = {"grpo": "GRPO", "kimi_k15": "Kimi k1.5 loss"}
COLORS = {"none": "tab:blue", "kimi_length_penalty": "tab:red"}
load = functools.partial(load_runs, arm_pattern=r"algo\.shaping=([A-Za-z0-9_]+)")


def labels(runs):
    """The arms' labels: the loss of the sweep (configs/kimi_length.py `algo`), with or without
    the length reward."""
    name = NAMES[next(iter(runs["none"].values()))["cfg"]["algo"]["name"]]
    return {"none": name, "kimi_length_penalty": f"{name} + length reward"}


def table(runs):
    steps = last_rl_step(runs, ARMS)
    ks = pass_ks(next(iter(runs["none"].values()))["summary"]["after_rl"])
    (e0, e1), (l0, l1) = early_late(steps)
    rows = [(f"response length (tokens), {w}", windowed("response_len", w, steps), 1)
            for w in ("early", "late")]
    rows += length_rows(steps) + heldout_rows(["greedy_acc"] + [f"pass@{k}" for k in ks])
    return comparison_table(runs, ARMS, labels(runs), rows, "none",
                            f"RL steps {steps}; early = steps {e0}-{e1}, late = steps {l0}-{l1}; ")


def plot(runs, data, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("response_len", "response length (tokens)"),
              ("reward_excess_len_correct", "CORRECT: length - own worked solution"),
              ("reward_excess_len_wrong", "INCORRECT: length - own worked solution"),
              ("accuracy", "train accuracy (sampled)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(19, 4))
    for ax, (key, title) in zip(axes, panels):
        plot_seed_curves(ax, runs, ARMS, data["seeds"], lambda r, k=key: rl_value(r, k),
                         labels(runs), COLORS, title)
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

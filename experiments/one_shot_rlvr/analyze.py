"""1-shot RLVR against full-data RL, from a sweep of configs/one_shot_rlvr.py:

    python experiments/one_shot_rlvr/analyze.py runs/one_shot_rlvr [--out DIR]

(DIR defaults to runs/one_shot_rlvr/analysis/.)

Per seed (experiments.analysis): the RL rows' train accuracy (for the 1-shot arm, on its one
example) and entropy of the sampled tokens, early (the first 10% of RL steps) and late (the last
25%); held-out greedy accuracy and pass@k after SFT, half-way and after RL. Writes `results.md`
(mean and 95% Student-t interval over seeds per arm, and of the per-seed difference 1-shot - full:
both arms of a seed start from the same SFT model), `results.json` and `results.png`.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, load_runs, rl_window_rows, save_figure,
    seed_curves_figure)

load = functools.partial(load_runs, arm_pattern=r"task\.kwargs\.index=(-?\d+)")
FULL = "-1"   # task.kwargs.index of the full-data arm (rlpt/tasks/one_shot.py)


def arms_of(runs):
    return [FULL] + sorted(a for a in runs if a != FULL)


def labels(runs):
    return {a: "full data" if a == FULL else f"1-shot (example {a})" for a in runs}


RL_METRICS = [("accuracy", "train accuracy (sampled; 1-shot: its one example)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3)]


def table(runs):
    return arms_table(runs, arms_of(runs), labels(runs), FULL,
                      lambda steps: rl_window_rows(steps, RL_METRICS))


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: c for a, c in zip(arms, ["tab:blue", "tab:red", "tab:orange", "tab:green"])}
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS],
                                   labels(runs), colors, 1)
    ax = axes[2]
    for a in arms:
        for i, s in enumerate(data["seeds"]):
            ev = runs[a][s]["eval"]
            ax.plot([r["step"] for r in ev], [r["greedy_acc"] for r in ev], "o-",
                    color=colors[a], alpha=0.6, label=labels(runs)[a] if i == 0 else None)
    ax.set_title("held-out greedy accuracy (each line a seed)")
    ax.set_xlabel("RL step (0 = after SFT)")
    ax.set_ylabel("accuracy (fraction)")
    ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

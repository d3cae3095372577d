"""1-shot RLVR against full-data RL, from a sweep of configs/one_shot_rlvr.py:

    python experiments/one_shot_rlvr/analyze.py runs/one_shot_rlvr [--out experiments/one_shot_rlvr]

Per seed (rlpt.sweep_analysis): the RL rows' train accuracy (for the 1-shot arm, on its one
example) and entropy of the sampled tokens, early (the first 10% of RL steps) and late (the last
25%); held-out greedy accuracy and pass@k after SFT, half-way and after RL. Writes `results.md` (mean and 95% Student-t interval
over seeds per arm, and of the per-seed difference 1-shot - full: both arms of a seed start from
the same SFT model), `results.json` and `results.png`.
"""
import functools

import matplotlib

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, comparison_table, early_late,
                                 heldout_rows, last_rl_step, load_runs, pass_ks, plot_seed_curves,
                                 rl_value, save_figure, windowed)

load = functools.partial(load_runs, arm_pattern=r"task\.kwargs\.index=(-?\d+)")
FULL = "-1"   # task.kwargs.index of the full-data arm (rlpt/tasks/one_shot.py)


def arms_of(runs):
    return [FULL] + sorted(a for a in runs if a != FULL)


def labels(runs):
    return {a: "full data" if a == FULL else f"1-shot (example {a})" for a in runs}


def eval_at(run, step, key):
    """The held-out `key` of the evaluation at RL step `step` (nan when there is none)."""
    rows = [r for r in run["eval"] if r["step"] == step]
    return float(rows[-1][key]) if rows else float("nan")


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    ks = pass_ks(next(iter(runs[FULL].values()))["summary"]["after_rl"])
    (e0, e1), (l0, l1) = early_late(steps)
    rows = [(f"{name}, {w}", windowed(key, w, steps), 3)
            for key, name in (("accuracy", "train accuracy (sampled; 1-shot: its one example)"),
                              ("entropy_sampled", "entropy of sampled tokens (nats)"))
            for w in ("early", "late")]
    mids = sorted({r["step"] for run in runs[FULL].values() for r in run["eval"]} - {0, steps})
    rows += heldout_rows(["greedy_acc"] + [f"pass@{k}" for k in ks], ["after_sft"])
    rows += [(f"held-out {k} at RL step {m}", lambda run, m=m, k=k: eval_at(run, m, k), 3)
             for m in mids for k in ("greedy_acc", "pass@1")]
    rows += heldout_rows(["greedy_acc"] + [f"pass@{k}" for k in ks], ["after_rl"])
    text, data = comparison_table(runs, arms, labels(runs), rows, FULL,
                                  f"RL steps {steps}; early = steps {e0}-{e1}, late = steps "
                                  f"{l0}-{l1}; ")
    return text, data


def plot(runs, data, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = arms_of(runs)
    colors = {a: c for a, c in zip(arms, ["tab:blue", "tab:red", "tab:orange", "tab:green"])}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in ((axes[0], "accuracy", "train accuracy (1-shot: its one example)"),
                           (axes[1], "entropy_sampled", "entropy of sampled tokens (nats)")):
        plot_seed_curves(ax, runs, arms, data["seeds"], lambda r, k=key: rl_value(r, k),
                         labels(runs), colors, title)
    ax = axes[2]
    for a in arms:
        for i, s in enumerate(data["seeds"]):
            ev = runs[a][s]["eval"]
            ax.plot([r["step"] for r in ev], [r["greedy_acc"] for r in ev], "o-",
                    color=colors[a], alpha=0.6, label=labels(runs)[a] if i == 0 else None)
    ax.set_title("held-out greedy accuracy (each line a seed)")
    ax.set_xlabel("RL step")
    ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

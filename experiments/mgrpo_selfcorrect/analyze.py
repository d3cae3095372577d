"""Self-correction of MGRPO against GRPO, from a sweep of configs/mgrpo_selfcorrect.py:

    python experiments/mgrpo_selfcorrect/analyze.py runs/mgrpo_selfcorrect [MORE_SWEEPS] [--out DIR]

(DIR defaults to runs/mgrpo_selfcorrect/analysis/; MORE_SWEEPS: more seeds, e.g.
runs/mgrpo_selfcorrect_s34.)

Per seed (experiments.analysis): the RL rows' train accuracy and, for MGRPO, its layer-2
(self-correction) accuracy and training-time wrong -> right / right -> wrong rates, early (the
first 10% of RL steps) and late (the last 25%); the held-out greedy self-correction rates of a
second attempt (`sc_wrong_to_right`, `sc_right_to_wrong`, `sc_acc_after`, eval.self_correction)
and the held-out greedy accuracy and pass@k, after SFT, half-way and after RL. Writes
`results.md` (mean and 95% Student-t interval over seeds per arm, and of the per-seed difference
MGRPO - GRPO: the arms of a seed share one SFT model), `results.json` and `results.png`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, early_late, eval_value, heldout_rows,
    rl_window_rows, save_figure, seed_curves_figure)

ARMS = ("grpo", "mgrpo")
LABELS = {"grpo": "GRPO", "mgrpo": "MGRPO"}
COLORS = {"grpo": "tab:blue", "mgrpo": "tab:red"}
SC_KEYS = ("sc_wrong_to_right", "sc_right_to_wrong", "sc_acc_after")
RL_METRICS = [("accuracy", "train accuracy (sampled, layer 1)", 3),
              ("layer2_accuracy", "MGRPO layer-2 accuracy (sampled)", 3),
              ("layer2_wrong_to_right", "MGRPO layer 2: wrong -> right (sampled)", 3)]


def pooled(key, window, steps):
    """run -> a layer-2 transition rate over the window, pooled over its steps: each step's rate
    weighted by its share of layer-2 samples from a wrong (wrong -> right) or a right
    (right -> wrong) first response, `layer2_from_wrong_frac` (a step without such samples logs
    rate 0 and weighs 0); nan for GRPO, which has no layer 2."""
    (e0, e1), (l0, l1) = early_late(steps)
    lo, hi = (e0, e1) if window == "early" else (l0, l1)

    def value_of(run):
        rows = [r for r in run["rl"] if lo <= r["step"] <= hi and key in r]
        w = [r["layer2_from_wrong_frac"] if key.endswith("wrong_to_right")
             else 1.0 - r["layer2_from_wrong_frac"] for r in rows]
        return (sum(r[key] * x for r, x in zip(rows, w)) / sum(w)) if sum(w) else float("nan")
    return value_of


def table(runs):
    def rl_rows(steps):
        rows = rl_window_rows(steps, RL_METRICS[:2])
        rows += [(f"MGRPO layer 2: {name} (sampled, pooled), {w}", pooled(key, w, steps), 3)
                 for key, name in (("layer2_wrong_to_right", "wrong -> right"),
                                   ("layer2_right_to_wrong", "right -> wrong"))
                 for w in ("early", "late")]
        return rows + heldout_rows(SC_KEYS)
    return arms_table(runs, [a for a in ARMS if a in runs], LABELS, "grpo", rl_rows)


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS[:3]],
                                   LABELS, COLORS, 1)
    ax = axes[-1]
    for a in arms:
        for i, s in enumerate(data["seeds"]):
            ev = runs[a][s]["eval"]
            steps = [r["step"] for r in ev]
            ax.plot(steps, [eval_value(runs[a][s], t, "sc_wrong_to_right") for t in steps], "o-",
                    color=COLORS[a], alpha=0.6, label=LABELS[a] if i == 0 else None)
    ax.set_title("held-out greedy self-correction: wrong -> right")
    ax.set_xlabel("RL step (0 = after SFT)")
    ax.set_ylabel("rate (fraction of the wrong first answers)")
    ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot)

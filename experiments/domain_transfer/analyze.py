"""Domain transfer (issue 27, claim 13), from a sweep of configs/domain_transfer.py:

    python experiments/domain_transfer/analyze.py runs/domain_transfer [--out DIR]

An arm is what trained after the shared warm-up, on which component: `grpo on addition`, `sft on
addition`, `grpo on multiplication`, `sft on multiplication`. Per trained component, against
GRPO (the arms of a seed share one SFT model): held-out greedy accuracy and pass@1 on each
component after SFT and after training, and the change (after - after SFT) on the trained
component and on the other one (transfer when positive, forgetting when negative). Writes
`results.md` (a table per trained component: mean and 95% Student-t interval over seeds per arm,
and of the per-seed difference sft - grpo), `results.json` and `results.png` (held-out curves on
both components).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, load_arms, plot_eval_curves, summary_value)

COMPONENTS = ("addition", "multiplication")   # index 0, 1 (configs/domain_transfer.py)


def arm_of(overrides, cfg):
    return f"{cfg['algo']['name']} on {COMPONENTS[cfg['task']['kwargs']['train']]}"


load = functools.partial(load_arms, arm_of=arm_of)


def change(d, key="greedy_acc"):
    """After training - after SFT of `key` on component d."""
    return lambda run: (summary_value(run, "after_rl", f"{key}_d{d}")
                        - summary_value(run, "after_sft", f"{key}_d{d}"))


def table(runs):
    texts, data = [], {"trained_on": {}}
    for i, comp in enumerate(COMPONENTS):
        arms = [a for a in (f"grpo on {comp}", f"sft on {comp}") if a in runs]
        if not arms:
            continue
        other = 1 - i
        rows = []
        for when in ("after_sft", "after_rl"):
            for d in (i, other):
                for key in ("greedy_acc", "pass@1"):
                    rows.append((f"held-out {key} on {COMPONENTS[d]}, "
                                 f"{when.replace('_', ' ').replace('rl', 'training')}",
                                 lambda run, w=when, d=d, k=key: summary_value(run, w,
                                                                               f"{k}_d{d}"), 3))
        rows += [(f"greedy_acc change on {comp} (trained)", change(i), 3),
                 (f"greedy_acc change on {COMPONENTS[other]} (not trained)", change(other), 3)]
        text, d = comparison_table({a: runs[a] for a in arms}, arms, {a: a for a in arms}, rows,
                                   arms[0], f"trained on {comp} after the shared warm-up; ")
        texts.append(f"### Trained on {comp}\n\n{text}")
        data["trained_on"][comp] = d
    return "\n\n".join(texts) + "\n", data


def plot(runs, data, path):
    arms = [f"{a} on {c}" for c in COMPONENTS for a in ("grpo", "sft") if f"{a} on {c}" in runs]
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    plot_eval_curves(runs, arms, [("greedy_acc_d0", "held-out greedy accuracy, addition"),
                                  ("greedy_acc_d1", "held-out greedy accuracy, multiplication")],
                     {a: a for a in arms}, colors, "training step",
                     "Train on one task, evaluate on both (tiny model, shared warm-up)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""Pre-DPO vs DPO (arXiv 2504.15843) from a sweep of configs/pre_dpo_vs_dpo.py:

    python experiments/pre_dpo_vs_dpo/analyze.py runs/pre_dpo_vs_dpo [--out DIR]

Arms: `dpo` (DPO, `pref.steps` updates: Pre-DPO's final phase), `dpo2x` (DPO for twice as many:
Pre-DPO's guide phase plus its final phase) and `pre_dpo`. Per seed, Pre-DPO as the arm compared
with each DPO arm, after SFT and after the preference phase, on held-out data: the policy's own
pair accuracy (`policy_pair_acc`: log pi(chosen) > log pi(rejected), no reference), the implicit
reward's (`pair_acc`: each arm against its own reference, for Pre-DPO its guide, so it is not
comparable across the arms), and the greedy accuracy and pass@k on addition problems; from the
training rows, the mean pair weight of the loss's gradient (`grad_weight`: DPO's
sigmoid(-beta h), Pre-DPO's with the guide as reference) and the train pair accuracy over the
last quarter of each run's own steps.
Writes `results.md` (mean and 95% Student-t interval over seeds per arm, and of the per-seed
difference arm - DPO; every arm of a seed starts from the same SFT model), `results.json` and
`results.png` (the held-out curves over the preference steps, one thin line per seed).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, late_mean, load_arms, plot_eval_curves)

ARMS = ("dpo", "dpo2x", "pre_dpo")
LABELS = {"dpo": "DPO", "dpo2x": "DPO, 2x steps", "pre_dpo": "Pre-DPO"}
COLORS = {"dpo": "tab:blue", "dpo2x": "tab:green", "pre_dpo": "tab:red"}
KEYS = ("policy_pair_acc", "pair_acc", "greedy_acc", "pass@1", "pass@8")


def arm_of(overrides, cfg):
    """dpo2x is DPO whose point doubles pref.steps."""
    if cfg["algo"]["name"] == "pre_dpo":
        return "pre_dpo"
    return "dpo2x" if "pref.steps=" in overrides else "dpo"


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    rows = [("pair weight (grad_weight), last 25% of each run's steps",
             lambda run: late_mean(run, "grad_weight"), 3),
            ("train pair accuracy, last 25% of each run's steps",
             lambda run: late_mean(run, "accuracy"), 3)]
    rows += heldout_rows(KEYS, ["initial", "final"])
    text, data = comparison_table(runs, arms, LABELS, rows, "dpo",
                                  "Held-out after SFT (initial) and after the preference phase "
                                  "(final); ")
    if "dpo2x" in arms:
        t, d = comparison_table(runs, ["dpo2x", "pre_dpo"], LABELS,
                                heldout_rows(KEYS, ["final"]), "dpo2x",
                                "At equal preference updates (Pre-DPO's guide + final phase): ")
        text += "\n" + t
        data["vs_dpo2x"] = d
    return text, data


def plot(runs, data, path):
    plot_eval_curves(runs, [a for a in ARMS if a in runs],
                     [("policy_pair_acc", "held-out pair accuracy (policy)"),
                      ("greedy_acc", "held-out greedy accuracy")], LABELS, COLORS,
                     "preference step (Pre-DPO: its final phase)",
                     "Pre-DPO vs DPO on 1-2 digit addition pairs", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

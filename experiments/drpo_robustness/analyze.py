"""DRPO's double robustness (arXiv 2506.01183) from a sweep of configs/drpo_robustness.py, one
case per sweep:

    python experiments/drpo_robustness/analyze.py runs/drpo_noisy --stem results_noisy
    python experiments/drpo_robustness/analyze.py runs/drpo_wrong_ref --stem results_wrong_ref

Arms: DPO, DRPO with g from the task reward (`drpo`), DRPO with g a reward model learned from
the run's (possibly flipped) labels (`drpo_rm`), online DPO. Per seed (every arm of a seed
starts from the same SFT model), on clean held-out data after SFT (initial) and after the
preference phase (final): the policy's own pair accuracy (`policy_pair_acc`, no reference), the
greedy accuracy and pass@k on addition problems; the differences arm - DPO and arm - online DPO
(DRPO samples online, so online DPO is its fair control). Writes `<stem>.md`, `<stem>.json` and
`<stem>.png` (held-out curves over the preference steps).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, load_arms, plot_eval_curves)

ARMS = ("dpo", "drpo", "drpo_rm", "online_dpo")
LABELS = {"dpo": "DPO", "drpo": "DRPO (g: task reward)", "drpo_rm": "DRPO (g: reward model)",
          "online_dpo": "online DPO"}
COLORS = {"dpo": "tab:blue", "drpo": "tab:red", "drpo_rm": "tab:orange",
          "online_dpo": "tab:green"}
KEYS = ("policy_pair_acc", "greedy_acc", "pass@1", "pass@8")


def arm_of(overrides, cfg):
    a = cfg["algo"]
    return "drpo_rm" if a["name"] == "drpo" and a.get("g") == "reward_model" else a["name"]


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    text, data = comparison_table(runs, arms, LABELS, heldout_rows(KEYS, ["initial", "final"]),
                                  "dpo", "Against DPO; ")
    if "online_dpo" in arms:
        online = ["online_dpo"] + [a for a in arms if a.startswith("drpo")]
        t, d = comparison_table(runs, online, LABELS, heldout_rows(KEYS, ["final"]),
                                "online_dpo", "Against online DPO (DRPO samples online too); ")
        text += "\n" + t
        data["vs_online_dpo"] = d
    return text, data


def plot(runs, data, path):
    plot_eval_curves(runs, [a for a in ARMS if a in runs],
                     [("policy_pair_acc", "held-out pair accuracy (policy)"),
                      ("greedy_acc", "held-out greedy accuracy")], LABELS, COLORS,
                     "preference step", "DRPO, DPO and online DPO on addition pairs", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

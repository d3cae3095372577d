"""DRPO's double robustness (arXiv 2506.01183) from the sweeps of configs/drpo_robustness.py,
one per case, analysed together:

    python experiments/drpo_robustness/analyze.py runs/drpo_clean runs/drpo_noisy \
        runs/drpo_wrong_ref [--out DIR]

Arms: DPO, DRPO with g from the task reward (`drpo`), DRPO with g a reward model learned from
the run's (possibly flipped) labels (`drpo_rm`), online DPO. A run's case is read from its
config: `noisy` (training labels flipped), `wrong_ref` (the model before SFT as the reference)
or `clean`. Every run of a seed, in every case, starts from the same SFT model. On clean
held-out data after SFT (initial) and after the preference phase (final): the policy's own pair
accuracy (`policy_pair_acc`, no reference), greedy accuracy and pass@k on addition problems.

Per case: each arm against DPO and the DRPO arms against online DPO (DRPO samples online, so
online DPO is its fair control), differences paired by seed. Across cases: each arm's held-out
pass@1 and greedy accuracy in a broken case minus the same arm, seed by seed, in the clean one
(what the broken part cost that arm). Writes `results.md`, `results.json` and `results.png`.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, common_seeds, comparison_table, fmt_ci, heldout_rows, late_mean, load_arms,
    plot_eval_curves, summary_value)
from rlpt.sweep.report import INTERVAL, t_interval  # noqa: E402

ARMS = ("dpo", "drpo", "drpo_rm", "online_dpo")
LABELS = {"dpo": "DPO", "drpo": "DRPO (g: task reward)", "drpo_rm": "DRPO (g: reward model)",
          "online_dpo": "online DPO"}
COLORS = {"dpo": "tab:blue", "drpo": "tab:red", "drpo_rm": "tab:orange",
          "online_dpo": "tab:green"}
CASES = ("clean", "noisy", "wrong_ref")
KEYS = ("policy_pair_acc", "greedy_acc", "pass@1", "pass@8")


def case_of(cfg):
    if cfg["pref"].get("flip_rate", 0.0) > 0:
        return "noisy"
    return "wrong_ref" if cfg["pref"].get("reference", "sft") == "init" else "clean"


def arm_of(overrides, cfg):
    a = cfg["algo"]
    arm = "drpo_rm" if a["name"] == "drpo" and a.get("g") == "reward_model" else a["name"]
    return f"{case_of(cfg)}:{arm}"


load = functools.partial(load_arms, arm_of=arm_of)


def cases_of(runs):
    return [c for c in CASES if any(a.startswith(c + ":") for a in runs)]


def table(runs):
    text, data = "", {"cases": {}}
    for case in cases_of(runs):
        arms = [f"{case}:{a}" for a in ARMS if f"{case}:{a}" in runs]
        labels = {f"{case}:{a}": LABELS[a] for a in ARMS}
        t, d = comparison_table(runs, arms, labels, heldout_rows(KEYS, ["initial", "final"]),
                                f"{case}:dpo", f"Case {case}, against DPO; ")
        text += f"## {case}\n\n{t}\n"
        data["cases"][case] = {"vs_dpo": d}
        online = [a for a in arms if a.endswith(("online_dpo", "drpo", "drpo_rm"))]
        if f"{case}:online_dpo" in online and len(online) > 1:
            online.insert(0, online.pop(online.index(f"{case}:online_dpo")))
            t, d = comparison_table(runs, online, labels, heldout_rows(KEYS, ["final"]),
                                    f"{case}:online_dpo", f"Case {case}, against online DPO "
                                    "(DRPO samples online too); ")
            text += f"\n{t}\n"
            data["cases"][case]["vs_online_dpo"] = d
    text += drpo_terms(runs, data)
    broken = [c for c in cases_of(runs) if c != "clean"]
    if "clean" in cases_of(runs) and broken:
        head = ["arm"] + [f"{c} - clean, {k}" for c in broken for k in ("pass@1", "greedy_acc")]
        lines = [f"## What the broken part cost each arm\n\nThe same arm and seed, held-out after "
                 f"training, broken case minus clean; {INTERVAL}.", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        data["vs_clean"] = {}
        for a in ARMS:
            cells = [LABELS[a]]
            for c in broken:
                for k in ("pass@1", "greedy_acc"):
                    pair = [f"{c}:{a}", f"clean:{a}"]
                    if not all(p in runs for p in pair):
                        cells.append("-")
                        continue
                    seeds = common_seeds(runs, pair)
                    ci = t_interval([summary_value(runs[pair[0]][s], "final", k)
                                     - summary_value(runs[pair[1]][s], "final", k)
                                     for s in seeds])
                    data["vs_clean"][f"{a}/{c}/{k}"] = ci
                    cells.append(fmt_ci(ci))
            lines.append("| " + " | ".join(cells) + " |")
        text += "\n".join(lines) + "\n"
    return text, data


def drpo_terms(runs, data) -> str:
    """Per case, DRPO (task g)'s share of clipped importance weights and its KL to the reference
    over the last 25% of its steps: how much the reference and the labels moved its
    estimator."""
    lines = ["## DRPO's estimator, last 25% of its steps (g: task reward)", "",
             f"{INTERVAL}.", "", "| case | importance weights clipped (share) | KL to the "
             "reference (k3, summed over a sample) |", "|---|---|---|"]
    data["drpo_terms"] = {}
    for case in cases_of(runs):
        arm = f"{case}:drpo"
        if arm not in runs:
            continue
        seeds = sorted(runs[arm])
        cis = [t_interval([late_mean(runs[arm][s], k) for s in seeds])
               for k in ("is_clip_frac", "kl")]
        data["drpo_terms"][case] = cis
        lines.append(f"| {case} | {fmt_ci(cis[0])} | {fmt_ci(cis[1])} |")
    return "\n".join(lines) + "\n\n"


def plot(runs, data, path):
    case = "noisy" if "noisy" in cases_of(runs) else cases_of(runs)[0]
    arms = [f"{case}:{a}" for a in ARMS if f"{case}:{a}" in runs]
    plot_eval_curves(runs, arms, [("policy_pair_acc", "held-out pair accuracy (policy)"),
                                  ("greedy_acc", "held-out greedy accuracy")],
                     {f"{case}:{a}": LABELS[a] for a in ARMS},
                     {f"{case}:{a}": COLORS[a] for a in ARMS}, "preference step",
                     f"DRPO, DPO and online DPO on addition pairs, case {case}", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

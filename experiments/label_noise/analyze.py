"""Robust RLHF under label noise from the sweeps of configs/label_noise.py:

    python experiments/label_noise/analyze.py runs/label_noise_policy [--out DIR]
    python experiments/label_noise/analyze.py runs/label_noise_rm [runs/label_noise_rm_hinge] \
        --stem results_rm [--out DIR]

An arm is an algorithm at a flip rate (`dpo@0.2`). Per flip rate, per seed (every arm of a seed
starts from the same SFT model), after training, on clean held-out data:

* policy sweep (DPO, rDPO, cDPO; rDPO and cDPO told the true rate): the policy's own pair
  accuracy (`policy_pair_acc`: log pi(chosen) > log pi(rejected) on held-out pairs), the
  implicit reward's (`pair_acc`, against the SFT reference), greedy accuracy and pass@1 on
  held-out addition problems; the differences rDPO - DPO and cDPO - DPO;
* reward-model sweeps (Bradley-Terry, VRPO; a follow-up sweep of VRPO with the bounded hinge,
  `rm.loss_type=hinge`): held-out pairwise accuracy `rm_acc` (and on pairs of equal length,
  `rm_acc_same_len`); the differences VRPO - BT.

Writes `<stem>.md` (mean and 95% Student-t interval over seeds; the differences paired by seed),
`<stem>.json` and `<stem>.png` (each metric against the flip rate, one line per algorithm).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, fill_band, heldout_rows, load_arms, save_figure)

POLICY = {"dpo": "DPO", "rdpo": "rDPO", "cdpo": "cDPO"}
RM = {"bt": "Bradley-Terry", "vrpo": "VRPO", "vrpo_hinge": "VRPO, bounded hinge"}
POLICY_KEYS = ("policy_pair_acc", "pair_acc", "greedy_acc", "pass@1")
RM_KEYS = ("rm_acc", "rm_acc_same_len")


def arm_of(overrides, cfg):
    if cfg["mode"] == "reward_model":   # VRPO with the bounded hinge is an arm of its own
        hinge = "_hinge" if cfg["rm"].get("loss_type") == "hinge" else ""
        return f"{cfg['rm']['kind']}{hinge}@{cfg['rm'].get('flip_rate', 0.0):g}"
    return f"{cfg['algo']['name']}@{cfg['pref'].get('flip_rate', 0.0):g}"


load = functools.partial(load_arms, arm_of=arm_of)


def layout(runs):
    """(names {algorithm: label}, metric keys, baseline algorithm, flip rates) of the sweep."""
    algos = {a.split("@")[0] for a in runs}
    names, keys, base = ((RM, RM_KEYS, "bt") if algos <= set(RM) else
                         (POLICY, POLICY_KEYS, "dpo"))
    flips = sorted({float(a.split("@")[1]) for a in runs})
    return {k: v for k, v in names.items() if k in algos}, keys, base, flips


def table(runs):
    names, keys, base, flips = layout(runs)
    text, data = "", {"flips": flips, "by_flip": {}}
    for f in flips:
        arms = [f"{n}@{f:g}" for n in names if f"{n}@{f:g}" in runs]
        labels = {f"{n}@{f:g}": names[n] for n in names}
        t, d = comparison_table(runs, arms, labels, heldout_rows(keys, ["final"]),
                                f"{base}@{f:g}", f"Training labels flipped: {f:g}; ")
        text += f"## flip rate {f:g}\n\n{t}\n"
        data["by_flip"][f"{f:g}"] = d
    return text, data


def plot(runs, data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names, keys, base, flips = layout(runs)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 4))
    for ax, k in zip(axes, keys):
        for i, n in enumerate(names):
            cis = [data["by_flip"][f"{f:g}"]["rows"][f"held-out {k} final"]["ci"][f"{n}@{f:g}"]
                   for f in flips]
            ax.plot(flips, [c["mean"] for c in cis], marker="o", color=f"C{i}", label=names[n])
            fill_band(ax, flips, cis, alpha=0.15, color=f"C{i}")
        ax.set(title=f"held-out {k} after training", xlabel="share of training labels flipped",
               ylabel="fraction")
        ax.legend(fontsize=8)
    save_figure(fig, "Label noise: clean held-out metrics against the flip rate "
                "(band: 95% t-interval over seeds)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

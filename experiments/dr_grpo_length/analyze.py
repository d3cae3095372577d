"""Length of correct vs incorrect responses over RL training, GRPO vs Dr. GRPO, from a sweep of
configs/dr_grpo_length.py:

    python experiments/dr_grpo_length/analyze.py runs/dr_grpo_length [--out experiments/dr_grpo_length]

Reads points/*/metrics.jsonl (the RL rows' `reward_response_len_correct` / `_wrong`: the mean
length, eos included, of the step's correct / incorrect sampled responses;
`reward_excess_len_*`: the same minus each problem's own worked-solution length; `accuracy`;
`stopped_frac`) and points/*/summary.json (held-out evaluation after SFT and after RL). Per
seed it averages each metric over an early window (the first 10% of RL steps) and a late window
(the last 25%); a step where every response is correct (or every one wrong) has no wrong
(correct) length and is skipped for that metric. Prints and writes `lengths.md` (mean and 95%
Student-t interval over seeds per arm, and of the paired per-seed difference Dr. GRPO - GRPO:
both arms of a seed start from the same SFT model) and `lengths.png`.
"""

import numpy as np

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, early_late, fmt_ci,
                                 paired, save_figure, smooth, summary_value)
from rlpt.sweep_analysis import window_mean as _window_mean
from rlpt.sweep_report import INTERVAL, t_interval

ARMS = ("grpo", "dr_grpo")


def window_mean(rl, key, lo, hi):
    """A window's mean; a step where every response is correct (or every one wrong) has no wrong
    (correct) length and is skipped for that metric."""
    keep = None
    if key.endswith("_correct"):
        keep = lambda r: r["accuracy"] > 0.0   # noqa: E731
    elif key.endswith("_wrong"):
        keep = lambda r: r["accuracy"] < 1.0   # noqa: E731
    if key == "stopped_frac":   # reported as the truncated fraction
        return 1.0 - _window_mean(rl, key, lo, hi)
    return _window_mean(rl, key, lo, hi, keep)


METRICS = [  # (label, key, window) ; window None = summary
    ("len wrong, early", "reward_response_len_wrong", "early"),
    ("len wrong, late", "reward_response_len_wrong", "late"),
    ("len correct, early", "reward_response_len_correct", "early"),
    ("len correct, late", "reward_response_len_correct", "late"),
    ("excess len wrong (len - own worked solution), early", "reward_excess_len_wrong", "early"),
    ("excess len wrong, late", "reward_excess_len_wrong", "late"),
    ("excess len correct, early", "reward_excess_len_correct", "early"),
    ("excess len correct, late", "reward_excess_len_correct", "late"),
    ("truncated frac (no eos), late", "stopped_frac", "late"),
    ("train accuracy, early", "accuracy", "early"),
    ("train accuracy, late", "accuracy", "late"),
    ("held-out greedy acc after SFT", ("after_sft", "greedy_acc"), None),
    ("held-out greedy acc after RL", ("after_rl", "greedy_acc"), None),
    ("held-out pass@1 after RL", ("after_rl", "pass@1"), None),
    ("held-out pass@8 after RL", ("after_rl", "pass@8"), None),
]


def per_seed(run, key, window, steps):
    if window is None:
        return summary_value(run, *key)
    early, late = early_late(steps)
    lo, hi = early if window == "early" else late
    return window_mean(run["rl"], key, lo, hi)


def table(runs):
    steps = max(r["rl"][-1]["step"] for a in ARMS for r in runs[a].values() if r["rl"])
    seeds = sorted(set(runs["grpo"]) & set(runs["dr_grpo"]))
    lines = [f"RL steps {steps}; early = steps 1-{max(1, steps // 10)}, late = steps "
             f"{steps - steps // 4 + 1}-{steps}; seeds {seeds}; {INTERVAL}; diff = Dr. GRPO - GRPO "
             "paired by seed.", "",
             "| metric | GRPO | Dr. GRPO | diff (Dr. GRPO - GRPO) |", "|---|---|---|---|"]
    data = {}
    for label, key, window in METRICS:
        v = {a: [per_seed(runs[a][s], key, window, steps) for s in seeds] for a in ARMS}
        digits = 1 if "len" in label else 3
        cis = {a: t_interval(v[a]) for a in ARMS}
        cd = paired(v, "dr_grpo", "grpo")
        data[label] = {"grpo": cis["grpo"], "dr_grpo": cis["dr_grpo"], "diff": cd}
        lines.append(f"| {label} | {fmt_ci(cis['grpo'], digits)} | {fmt_ci(cis['dr_grpo'], digits)} | "
                     f"{fmt_ci(cd, digits)} |")
    return "\n".join(lines) + "\n", data


def plot(runs, data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [("reward_response_len_wrong", "length of INCORRECT responses (tokens)"),
            ("reward_response_len_correct", "length of CORRECT responses (tokens)"),
            ("reward_excess_len_wrong", "INCORRECT: length - own worked solution"),
            ("accuracy", "train accuracy (sampled)")]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4))
    colors = {"grpo": "tab:red", "dr_grpo": "tab:blue"}
    for ax, (key, title) in zip(axes, keys):
        for arm in ARMS:
            curves = []
            for s, run in sorted(runs[arm].items()):
                rl = run["rl"]
                vals = []
                for r in rl:
                    bad = ((key.endswith("_correct") and r["accuracy"] <= 0)
                           or (key.endswith("_wrong") and r["accuracy"] >= 1))
                    vals.append(np.nan if bad or key not in r else r[key])
                steps = [r["step"] for r in rl]
                y = smooth(vals)
                ax.plot(steps, y, color=colors[arm], alpha=0.35, lw=0.8)
                curves.append((steps, y))
            n = min(len(c[0]) for c in curves)
            mean = np.nanmean(np.stack([c[1][:n] for c in curves]), axis=0)
            ax.plot(curves[0][0][:n], mean, color=colors[arm], lw=2,
                    label=f"{'Dr. GRPO' if arm == 'dr_grpo' else 'GRPO'} (mean of {len(curves)})")
        ax.set_title(title)
        ax.set_xlabel("RL step")
        ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "lengths", table, plot)

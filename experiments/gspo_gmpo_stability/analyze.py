"""Collapse counts and final accuracy per arm (and learning rate), from a sweep of
configs/gspo_gmpo_stability.py (the pilots too):

    python experiments/gspo_gmpo_stability/analyze.py runs/gspo_gmpo_stability [--out DIR] \
        [--stem NAME]

(DIR defaults to runs/gspo_gmpo_stability/analysis/, NAME to `stability`.)

Collapse (defined before any run, README): a seed collapses when its held-out greedy accuracy
at any evaluation during RL (every rl_steps / evals steps, 128 prompts) falls below half its own
value after SFT (RL step 0). Reads points/*/metrics.jsonl and summary.json. Prints and writes
`<stem>.md` / `<stem>.json` (per setting: collapsed seeds, first collapse step, held-out greedy
accuracy and pass@1 after SFT and after RL, the minimum over RL evaluations of greedy accuracy
relative to after SFT, late train accuracy, clip fraction; mean and 95% Student-t interval over
seeds; paired per-seed differences to GRPO at the same learning rate) and `<stem>.png`
(held-out greedy accuracy relative to after SFT, per seed).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import analysis_main, fmt_ci, save_figure  # noqa: E402
from experiments.lr_grid import load_grid  # noqa: E402
from rlpt.sweep.report import INTERVAL, t_interval  # noqa: E402

ORDER = ("grpo", "gspo", "gmpo")
NAMES = {"grpo": "GRPO", "gspo": "GSPO", "gmpo": "GMPO"}


def load(sweep_dir):
    """{(arm, lr): {seed: run}} (experiments/lr_grid.load_grid's algorithm and rate), eval rows
    by step."""
    runs = {}
    for arm, by_lr in load_grid(sweep_dir).items():
        for lr, by_seed in by_lr.items():
            for run in by_seed.values():
                run["eval"] = sorted(run["eval"], key=lambda r: r["step"])
            runs[(arm, lr)] = by_seed
    return runs


def per_seed(run):
    ev = run["eval"]
    g0 = ev[0]["greedy_acc"]
    during = [r for r in ev if r["step"] > 0]
    first = next((r["step"] for r in during if r["greedy_acc"] < 0.5 * g0), None)
    rl = run["rl"]
    steps = rl[-1]["step"]
    late = [r for r in rl if r["step"] > steps - steps // 4]
    return {"collapsed": first is not None, "first_collapse_step": first,
            "greedy_sft": g0, "greedy_rl": ev[-1]["greedy_acc"],
            "pass1_sft": ev[0]["pass@1"], "pass1_rl": ev[-1]["pass@1"],
            "min_rel_greedy": min(r["greedy_acc"] for r in during) / g0 if g0 > 0 else np.nan,
            "train_acc_late": float(np.mean([r["accuracy"] for r in late])),
            "clip_frac_mean": float(np.mean([r["clip_frac"] for r in rl])),
            "entropy_late": float(np.mean([r["entropy_sampled"] for r in late])),
            "stopped": bool(run["summary"] and "stopped" in run["summary"])}


KEYS = [("greedy_sft", "held-out greedy acc after SFT"),
        ("greedy_rl", "held-out greedy acc after RL"),
        ("pass1_rl", "held-out pass@1 after RL"),
        ("min_rel_greedy", "min over RL evals of greedy acc / after-SFT greedy acc"),
        ("train_acc_late", "train accuracy (sampled), last 25% of steps"),
        ("clip_frac_mean", "clip fraction, mean over all RL steps"),
        ("entropy_late", "entropy of sampled tokens, last 25% of steps")]


def settings_of(runs):
    """The (arm, lr) settings, by learning rate, then GRPO, GSPO, GMPO."""
    return sorted(runs, key=lambda k: (k[1], ORDER.index(k[0]) if k[0] in ORDER else 9))


def analyze(runs):
    settings = settings_of(runs)
    steps = max(r["rl"][-1]["step"] for s in runs.values() for r in s.values())
    ev_steps = sorted({r["step"] for s in runs.values() for r in s.values() for r in r["eval"]})
    lines = [f"RL steps {steps}; held-out evaluations at RL steps {ev_steps}; collapse = held-out "
             "greedy accuracy at some RL evaluation < 0.5 x its after-SFT value; "
             f"{INTERVAL}; diff = arm - GRPO at the same lr, paired by seed.", "",
             "| arm | lr | seeds | collapsed | first collapse step per seed | "
             + " | ".join(label for _, label in KEYS) + " |",
             "|---|---:|---:|---:|---|" + "---|" * len(KEYS)]
    data = {}
    ps = {k: {s: per_seed(r) for s, r in runs[k].items()} for k in settings}
    for k in settings:
        arm, lr = k
        seeds = sorted(ps[k])
        v = [ps[k][s] for s in seeds]
        n_col = sum(x["collapsed"] for x in v)
        firsts = ", ".join(f"{s}:{ps[k][s]['first_collapse_step'] or '-'}" for s in seeds)
        cis = {key: t_interval([x[key] for x in v]) for key, _ in KEYS}
        data[f"{arm} lr={lr:g}"] = {"seeds": seeds, "collapsed": n_col,
                                    "per_seed": {str(s): ps[k][s] for s in seeds},
                                    **{key: cis[key] for key, _ in KEYS}}
        lines.append(f"| {NAMES.get(arm, arm)} | {lr:g} | {len(seeds)} | {n_col}/{len(seeds)} | "
                     f"{firsts} | " + " | ".join(fmt_ci(cis[key]) for key, _ in KEYS) + " |")
    # paired differences to GRPO at the same lr
    diff_lines = []
    for k in settings:
        arm, lr = k
        if arm == "grpo" or ("grpo", lr) not in ps:
            continue
        seeds = sorted(set(ps[k]) & set(ps[("grpo", lr)]))
        row = []
        for key in ("greedy_rl", "pass1_rl", "min_rel_greedy"):
            d = t_interval([ps[k][s][key] - ps[("grpo", lr)][s][key] for s in seeds])
            data[f"{arm} lr={lr:g}"][f"diff_vs_grpo_{key}"] = d
            row.append(fmt_ci(d))
        diff_lines.append(f"| {NAMES.get(arm, arm)} - GRPO | {lr:g} | {len(seeds)} | "
                          + " | ".join(row) + " |")
    if diff_lines:
        lines += ["", "| diff | lr | seeds | greedy acc after RL | pass@1 after RL | "
                  "min relative greedy acc |", "|---|---:|---:|---|---|---|"] + diff_lines
    return "\n".join(lines) + "\n", data


def plot(runs, data, path):
    settings = settings_of(runs)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings), 4), squeeze=False)
    for ax, k in zip(axes[0], settings):
        for s, r in sorted(runs[k].items()):
            g0 = r["eval"][0]["greedy_acc"]   # 0: no ratio (per_seed's min_rel_greedy is nan)
            ax.plot([e["step"] for e in r["eval"]],
                    [e["greedy_acc"] / g0 if g0 > 0 else np.nan for e in r["eval"]],
                    "o-", ms=3, label=f"seed {s}")
        ax.axhline(0.5, color="black", ls="--", lw=1)
        ax.set_ylim(0, 1.6)
        ax.set_title(f"{NAMES.get(k[0], k[0])}, lr {k[1]:g}")
        ax.set_xlabel("RL step (0 = after SFT)")
        ax.set_ylabel("held-out greedy acc / after-SFT value (ratio)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save_figure(fig, "Collapse = below the dashed line (half the after-SFT greedy accuracy)", path)


if __name__ == "__main__":
    analysis_main(__file__, "stability", analyze, plot, load=load)

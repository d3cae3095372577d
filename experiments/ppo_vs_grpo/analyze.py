"""PPO vs GRPO at an equal number of sampled responses, from a sweep of configs/ppo_vs_grpo.py:

    python experiments/ppo_vs_grpo/analyze.py runs/ppo_vs_grpo [--out DIR]

(DIR defaults to runs/ppo_vs_grpo/analysis/.)

Reads points/*/metrics.jsonl (RL rows: `accuracy` = the step's sampled-response accuracy,
`clip_frac`, `value_mean`, `grad_norm`; eval rows: held-out greedy accuracy and pass@k) and
points/*/summary.json (seconds per group). Both arms see the same prompts and sample the same
number of responses per step (batch x samples), so RL step s is the same budget in both.
Prints and writes `compare.md` / `compare.json` (mean and 95% Student-t interval over seeds per
arm, and of the paired per-seed difference PPO - GRPO: both arms of a seed start from the same
SFT model) and `compare.png` (train accuracy and held-out greedy accuracy against the number of
sampled responses; 95% t-bands clipped to the metric's range, [0, 1] or [-1, 1] for a
difference).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    BAND, DIFFERENCE, FRACTION, analysis_main, early_late, fill_band, fmt_ci, paired, pass_ks,
    save_figure, smooth, window_mean)
from rlpt.sweep.report import INTERVAL, t_interval  # noqa: E402

ARMS = ("grpo", "ppo")
NAMES = {"grpo": "GRPO", "ppo": "PPO"}


def responses_per_step(runs):
    """Sampled responses per RL step (prompts x samples), the same in both arms."""
    cfg = next(iter(runs["grpo"].values()))["cfg"]
    return cfg["rl"]["batch_size"] * cfg["sampling"]["num_samples"]


def table(runs):
    seeds = sorted(set(runs["grpo"]) & set(runs["ppo"]))
    steps = max(r["rl"][-1]["step"] for a in ARMS for r in runs[a].values() if r["rl"])
    per_step = responses_per_step(runs)
    early, late = early_late(steps)
    ks = pass_ks(runs["grpo"][seeds[0]]["summary"]["after_rl"])
    metrics = [("held-out greedy acc after SFT",
                lambda r: r["summary"]["after_sft"]["greedy_acc"]),
               ("held-out greedy acc after RL", lambda r: r["summary"]["after_rl"]["greedy_acc"])]
    for k in ks:
        metrics.append((f"held-out pass@{k} after RL",
                        lambda r, k=k: r["summary"]["after_rl"][f"pass@{k}"]))
    for d in (1, 2, 3):
        metrics.append((f"held-out pass@1 after RL, {d} digit(s)",
                        lambda r, d=d: r["summary"]["after_rl"].get(f"pass@1_d{d}", np.nan)))
    metrics += [
        (f"train accuracy (sampled), early (steps {early[0]}-{early[1]})",
         lambda r: window_mean(r["rl"], "accuracy", *early)),
        (f"train accuracy (sampled), late (steps {late[0]}-{late[1]})",
         lambda r: window_mean(r["rl"], "accuracy", *late)),
        ("clip fraction, late", lambda r: window_mean(r["rl"], "clip_frac", *late)),
        ("grad norm, late", lambda r: window_mean(r["rl"], "grad_norm", *late)),
        ("entropy of sampled tokens, late",
         lambda r: window_mean(r["rl"], "entropy_sampled", *late)),
        ("PPO value loss, early", lambda r: window_mean(r["rl"], "vf_loss", *early)),
        ("PPO value loss, late", lambda r: window_mean(r["rl"], "vf_loss", *late)),
        ("PPO mean value, late", lambda r: window_mean(r["rl"], "value_mean", *late)),
    ]
    lines = [f"RL steps {steps} x {per_step} sampled responses per step (both arms: "
             f"{steps * per_step:,} responses per run); seeds {seeds}; {INTERVAL}; diff = PPO - "
             "GRPO paired by seed.", "",
             "| metric | GRPO | PPO | diff (PPO - GRPO) |", "|---|---|---|---|"]
    data = {}
    for label, fn in metrics:
        v = {a: [fn(runs[a][s]) for s in seeds] for a in ARMS}
        cis = {a: t_interval(v[a]) for a in ARMS}
        cd = paired(v, "ppo", "grpo")
        data[label] = {"grpo": cis["grpo"], "ppo": cis["ppo"], "diff": cd}
        lines.append(f"| {label} | {fmt_ci(cis['grpo'])} | {fmt_ci(cis['ppo'])} | {fmt_ci(cd)} |")
    # time: per group (R runs in one vmapped program)
    lines += ["", "Wall time per arm (one vmapped program of all its seeds; RL includes the "
              "held-out evaluations):", "", "| arm | runs | SFT s | RL s | RL s per step |",
              "|---|---:|---:|---:|---:|"]
    for a in ARMS:
        s = runs[a][seeds[0]]["summary"]
        rl_s = s["rl_seconds_group_this_session"]
        data[f"time_{a}"] = {"runs": s["runs_in_program"], "sft_s": s["sft_seconds_group"],
                             "rl_s": rl_s, "rl_s_per_step": rl_s / s["rl_steps"]}
        lines.append(f"| {NAMES[a]} | {s['runs_in_program']} | {s['sft_seconds_group']} | "
                     f"{rl_s} | {rl_s / s['rl_steps']:.2f} |")
    return "\n".join(lines) + "\n", data


def plot(runs, data, path):
    per_step = responses_per_step(runs)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(19, 4.5))
    colors = {"grpo": "tab:red", "ppo": "tab:green"}
    for arm in ARMS:
        seeds = sorted(runs[arm])
        curves = []
        for s in seeds:
            rl = runs[arm][s]["rl"]
            x = np.array([r["step"] for r in rl]) * per_step
            y = smooth([r["accuracy"] for r in rl])
            axes[0].plot(x, y, color=colors[arm], alpha=0.3, lw=0.8)
            curves.append((x, y))
        n = min(len(c[0]) for c in curves)
        axes[0].plot(curves[0][0][:n], np.mean([c[1][:n] for c in curves], 0), color=colors[arm],
                     lw=2, label=f"{NAMES[arm]} (mean of {len(seeds)})")
        ev_steps = sorted(set.intersection(*[{r["step"] for r in runs[arm][s]["eval"]}
                                             for s in seeds]))
        cis = [t_interval([next(r["greedy_acc"] for r in runs[arm][s]["eval"] if r["step"] == st)
                           for s in seeds]) for st in ev_steps]
        x = np.array(ev_steps) * per_step
        axes[1].plot(x, [c["mean"] for c in cis], "o-", color=colors[arm], lw=2,
                     label=NAMES[arm])
        fill_band(axes[1], x, cis, FRACTION, color=colors[arm], alpha=0.2)
    seeds = sorted(set(runs["grpo"]) & set(runs["ppo"]))
    ev_steps = sorted(set.intersection(*[{r["step"] for r in runs[a][s]["eval"]}
                                         for a in ARMS for s in seeds]))
    at = lambda a, s, st, k: next(r[k] for r in runs[a][s]["eval"] if r["step"] == st)
    for key, col in (("greedy_acc", "tab:purple"), ("pass@1", "tab:orange")):
        cis = [t_interval([at("ppo", s, st, key) - at("grpo", s, st, key) for s in seeds])
               for st in ev_steps]
        x = np.array(ev_steps) * per_step
        axes[2].plot(x, [c["mean"] for c in cis], "o-", color=col, lw=2, label=key)
        fill_band(axes[2], x, cis, DIFFERENCE, color=col, alpha=0.2)
    axes[2].axhline(0, color="black", lw=1)
    axes[2].set_title(f"held-out, PPO - GRPO paired by seed\n({BAND}, clipped to [-1, 1])")
    axes[2].set_ylabel("difference PPO - GRPO (fraction)")
    axes[0].set_title("train accuracy of sampled responses\n(moving average of 5 logged steps)")
    axes[0].set_ylabel("accuracy (fraction)")
    axes[1].set_title(f"held-out greedy accuracy, mean\n({BAND}, clipped to [0, 1])")
    axes[1].set_ylabel("accuracy (fraction)")
    for ax in axes:
        ax.set_xlabel("sampled responses per run")
        ax.legend()
        ax.grid(alpha=0.3)
    save_figure(fig, "PPO vs GRPO, scratchpad addition, tiny model, same prompts and samples", path)


if __name__ == "__main__":
    analysis_main(__file__, "compare", table, plot)

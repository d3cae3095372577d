"""pass@k curves before and after RL (GRPO), from a sweep of configs/yue_passk.py:

    python experiments/yue_passk/analyze.py runs/yue_passk [MORE_SWEEPS] [--out DIR]

(DIR defaults to runs/yue_passk/analysis/; MORE_SWEEPS: more seeds of the same recipe, e.g. a
sweep with `--only='seed=(5|6)$'`.)

Reads points/*/metrics.jsonl (the `eval` rows: greedy accuracy and unbiased pass@k from
eval.n_samples samples per held-out prompt, after SFT at RL step 0, at any intermediate RL step
and after RL; per difficulty `greedy_acc_d{d}`, `pass@1_d{d}`, `pass@{max k}_d{d}`). Prints and
writes `passk.md` / `passk.json` (mean and 95% Student-t interval over seeds of pass@k after
SFT and after RL and of the paired per-seed difference RL - SFT: both come from the same run;
the crossing point: per seed, the smallest k of the grid at which pass@k after SFT is >= pass@k
after RL) and `passk.png` (pass@k against log2 k with 95% t-bands, clipped to [0, 1]; the
difference, its band clipped to [-1, 1]).
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    BAND, DIFFERENCE, FRACTION, analysis_main, fill_band, fmt_ci, pass_ks, save_figure)
from rlpt.sweep.report import INTERVAL, t_interval  # noqa: E402


def by_seed(runs):
    """{seed: {RL step: evaluation row}} (step 0 = after SFT) of experiments.analysis.load_runs'
    {arm: {seed: run}}: the sweep has one arm, "all" (its points are named `seed=N`)."""
    if list(runs) != ["all"]:
        raise ValueError(f"a sweep of configs/yue_passk.py has the single arm 'all' (points "
                         f"named seed=N), not {sorted(runs)}")
    return {seed: {r["step"]: r for r in run["eval"]} for seed, run in runs["all"].items()}


def crossing(sft, rl, ks):
    """The smallest k with pass@k(SFT) >= pass@k(RL), or None (RL ahead at every k)."""
    for k, a, b in zip(ks, sft, rl):
        if a >= b:
            return k
    return None


BEFORE = ("after SFT", "SFT")   # the starting policy's name, long and short
TITLE = "Scratchpad addition (1-3 digits), tiny model, GRPO: pass@k before / after RL"


def analyze(runs, before=BEFORE):
    """The tables (module doc); `before`: how the policy at RL step 0 is named (smollm2_passk's
    analysis: the base model)."""
    long, short = before
    runs = by_seed(runs)
    seeds = sorted(runs)
    steps = sorted(set.intersection(*[set(runs[s]) for s in seeds]))
    first, last = steps[0], steps[-1]
    ks = pass_ks(runs[seeds[0]][first])
    kmax = ks[-1]
    data = {"seeds": seeds, "eval_steps": steps, "ks": ks, "interval": INTERVAL}
    lines = [f"Seeds {seeds}; held-out evaluation at RL steps {steps} (step {first} = {long}); "
             f"{INTERVAL}; diff = after RL (step {last}) - {long}, paired by seed.", "",
             f"| k | {long} | after RL | diff (RL - {short}) | seeds with RL > {short} |",
             "|---:|---|---|---|---:|"]
    per_k = {}
    for k in ks:
        a = [runs[s][first][f"pass@{k}"] for s in seeds]
        b = [runs[s][last][f"pass@{k}"] for s in seeds]
        d = [y - x for x, y in zip(a, b)]
        ci = {"sft": t_interval(a), "rl": t_interval(b), "diff": t_interval(d)}
        per_k[k] = ci
        lines.append(f"| {k} | {fmt_ci(ci['sft'])} | {fmt_ci(ci['rl'])} | {fmt_ci(ci['diff'])} | "
                     f"{sum(x > 0 for x in d)}/{len(d)} |")
    data["pass_at_k"] = {str(k): v for k, v in per_k.items()}
    # greedy
    a = [runs[s][first]["greedy_acc"] for s in seeds]
    b = [runs[s][last]["greedy_acc"] for s in seeds]
    g = {"sft": t_interval(a), "rl": t_interval(b),
         "diff": t_interval([y - x for x, y in zip(a, b)])}
    data["greedy_acc"] = g
    lines.append(f"| greedy | {fmt_ci(g['sft'])} | {fmt_ci(g['rl'])} | {fmt_ci(g['diff'])} | "
                 f"{sum(y > x for x, y in zip(a, b))}/{len(a)} |")
    # crossing point per seed
    cross = {}
    for s in seeds:
        cross[s] = crossing([runs[s][first][f"pass@{k}"] for k in ks],
                            [runs[s][last][f"pass@{k}"] for k in ks], ks)
    mean_cross = crossing([per_k[k]["sft"]["mean"] for k in ks],
                          [per_k[k]["rl"]["mean"] for k in ks], ks)
    data["crossing_per_seed"] = {str(s): c for s, c in cross.items()}
    data["crossing_of_means"] = mean_cross
    lines += ["", f"Crossing point (the smallest k of the grid at which pass@k {long} >= pass@k "
              "after RL; 'none' = RL ahead at every k):", "",
              "| seed | " + " | ".join(str(s) for s in seeds) + " | mean curves |",
              "|---|" + "---:|" * (len(seeds) + 1),
              "| crossing k | " + " | ".join(str(cross[s] or "none") for s in seeds)
              + f" | {mean_cross or 'none'} |"]
    # intermediate evaluations
    if len(steps) > 2:
        lines += ["", "pass@k at every evaluation (mean over seeds [95% interval]):", "",
                  "| RL step | " + " | ".join(f"pass@{k}" for k in ks) + " |",
                  "|---:|" + "---|" * len(ks)]
        data["by_step"] = {}
        for st in steps:
            cis = {k: t_interval([runs[s][st][f"pass@{k}"] for s in seeds]) for k in ks}
            data["by_step"][str(st)] = {str(k): v for k, v in cis.items()}
            lines.append(f"| {st} | " + " | ".join(fmt_ci(cis[k]) for k in ks) + " |")
    # per difficulty
    diffs = sorted({int(m.group(1)) for k in runs[seeds[0]][first]
                    for m in [re.fullmatch(r"greedy_acc_d(\d+)", k)] if m})
    if diffs:
        lines += ["", f"Per difficulty (the longer operand's digits): {long} -> after RL, and "
                  f"the paired diff RL - {short}:", "",
                  f"| digits | metric | {long} | after RL | diff (RL - {short}) |",
                  "|---:|---|---|---|---|"]
        data["by_difficulty"] = {}
        for dd in diffs:
            for key in (f"greedy_acc_d{dd}", f"pass@1_d{dd}", f"pass@{kmax}_d{dd}"):
                a = [runs[s][first][key] for s in seeds]
                b = [runs[s][last][key] for s in seeds]
                ci = {"sft": t_interval(a), "rl": t_interval(b),
                      "diff": t_interval([y - x for x, y in zip(a, b)])}
                data["by_difficulty"][key] = ci
                lines.append(f"| {dd} | {key.rsplit('_', 1)[0]} | {fmt_ci(ci['sft'])} | "
                             f"{fmt_ci(ci['rl'])} | {fmt_ci(ci['diff'])} |")
    return "\n".join(lines) + "\n", data


def plot(runs, data, path, before=BEFORE, title=TITLE):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = by_seed(runs)
    seeds, ks, steps = data["seeds"], data["ks"], data["eval_steps"]
    x = np.log2(ks)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(steps)))
    for st, col in zip(steps, colors):
        cis = [t_interval([runs[s][st][f"pass@{k}"] for s in seeds]) for k in ks]
        label = before[0] if st == steps[0] else (
            "after RL" if st == steps[-1] else f"RL step {st}")
        col = "tab:blue" if st == steps[0] else ("tab:red" if st == steps[-1] else col)
        axes[0].plot(x, [c["mean"] for c in cis], "o-", color=col, lw=2,
                     label=f"{label} (step {st})")
        fill_band(axes[0], x, cis, FRACTION, color=col, alpha=0.2)
    axes[0].set_xticks(x, [str(k) for k in ks])
    axes[0].set_xlabel("k (samples per prompt, log2 scale)")
    axes[0].set_ylabel("held-out pass@k (fraction)")
    axes[0].set_title(f"pass@k, mean of {len(seeds)} seeds\n({BAND}, clipped to [0, 1])")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    d = [data["pass_at_k"][str(k)]["diff"] for k in ks]
    for s in seeds:
        axes[1].plot(x, [runs[s][steps[-1]][f"pass@{k}"] - runs[s][steps[0]][f"pass@{k}"]
                         for k in ks], color="gray", alpha=0.4, lw=0.8)
    axes[1].plot(x, [c["mean"] for c in d], "o-", color="black", lw=2, label="mean (thin: seeds)")
    fill_band(axes[1], x, d, DIFFERENCE, color="black", alpha=0.15)
    axes[1].axhline(0, color="tab:blue", lw=1)
    axes[1].set_xticks(x, [str(k) for k in ks])
    axes[1].set_xlabel("k (samples per prompt, log2 scale)")
    axes[1].set_ylabel(f"pass@k difference (RL - {before[1]})")
    axes[1].set_title(f"pass@k after RL - {before[0]}, paired by seed\n({BAND}, clipped to "
                      "[-1, 1])")
    axes[1].legend()
    axes[1].grid(alpha=0.3)
    save_figure(fig, title, path)


if __name__ == "__main__":
    analysis_main(__file__, "passk", analyze, plot)

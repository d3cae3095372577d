"""Entropy and pass@k of GTPO and GRPO-S against GRPO, from a sweep of configs/gtpo_entropy.py:

    python experiments/gtpo_entropy/analyze.py runs/gtpo_entropy,runs/gtpo_entropy_joint \
        [--out experiments/gtpo_entropy]

(the second sweep, `norm=joint`, adds the arms "GTPO joint" and "GRPO-S joint").

Per seed: the RL rows' `entropy_sampled` (mean entropy, in nats, of the policy's distribution at
each sampled response token), train `accuracy` and `response_len` averaged over an early window
(the first 10% of RL steps) and a late one (the last 25%) (rlpt.sweep_analysis.early_late); the
held-out greedy accuracy and pass@k after SFT and after RL (summary.json). Writes `results.md`
(mean and 95% Student-t interval over seeds per arm, and of the per-seed difference arm - GRPO:
the arms of a seed start from the same SFT model), `results.json` and `results.png`.
"""

import numpy as np

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, early_late, fmt_ci, load_runs,
                                 paired, pass_ks, save_figure, smooth, summary_value,
                                 window_mean)
from rlpt.sweep_report import INTERVAL, t_interval

ARMS = ("grpo", "gtpo", "grpo_s", "gtpo/joint", "grpo_s/joint")
LABEL = {"grpo": "GRPO", "gtpo": "GTPO", "grpo_s": "GRPO-S", "gtpo/joint": "GTPO joint",
         "grpo_s/joint": "GRPO-S joint"}
COLOR = {"grpo": "tab:blue", "gtpo": "tab:red", "grpo_s": "tab:green", "gtpo/joint": "tab:orange",
         "grpo_s/joint": "tab:olive"}


def load(spec):
    """Runs of one or more sweeps (`DIR[,DIR...]`); a GTPO / GRPO-S arm whose
    entropy_shaping_norm is not the default `separate` is the arm `<algo>/<norm>`."""
    runs = {}
    for sweep_dir in spec.split(","):
        for arm, by_seed in load_runs(sweep_dir).items():
            norm = next(iter(by_seed.values()))["cfg"]["algo"].get("entropy_shaping_norm")
            if arm in ("gtpo", "grpo_s") and norm != "separate":
                arm = f"{arm}/{norm}"
            runs.setdefault(arm, {}).update(by_seed)
    return runs


def metrics(runs, steps, ks):
    """(label, per-seed value function, digits) for every row of the table."""
    early, late = early_late(steps)
    out = []
    for key, name, digits in (("entropy_sampled", "entropy of sampled tokens (nats)", 3),
                              ("accuracy", "train accuracy (sampled)", 3),
                              ("response_len", "response length (tokens)", 1)):
        for wname, (lo, hi) in (("early", early), ("late", late)):
            out.append((f"{name}, {wname}",
                        lambda run, k=key, lo=lo, hi=hi: window_mean(run["rl"], k, lo, hi), digits))
    for which in ("after_sft", "after_rl"):
        for k in ["greedy_acc"] + [f"pass@{k}" for k in ks]:
            out.append((f"held-out {k} {which.replace('_', ' ')}",
                        lambda run, w=which, k=k: summary_value(run, w, k), 3))
    return out


def table(runs):
    arms = [a for a in ARMS if a in runs]
    seeds = sorted(set.intersection(*[set(runs[a]) for a in arms]))
    steps = max(r["rl"][-1]["step"] for a in arms for r in runs[a].values() if r["rl"])
    ks = pass_ks(runs["grpo"][seeds[0]]["summary"]["after_rl"])
    (e0, e1), (l0, l1) = early_late(steps)
    others = [a for a in arms if a != "grpo"]
    head = ["metric"] + [LABEL[a] for a in arms] + [f"{LABEL[a]} - GRPO" for a in others]
    lines = [f"RL steps {steps}; early = steps {e0}-{e1}, late = steps {l0}-{l1}; seeds {seeds}; "
             f"{INTERVAL}; differences paired by seed.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    data = {"seeds": seeds, "steps": steps, "ks": ks, "rows": {}}
    for label, fn, digits in metrics(runs, steps, ks):
        v = {a: [fn(runs[a][s]) for s in seeds] for a in arms}
        cis = {a: t_interval(v[a]) for a in arms}
        diffs = {a: paired(v, a, "grpo") for a in others}
        data["rows"][label] = {"per_seed": v, "ci": cis, "diff_vs_grpo": diffs}
        lines.append("| " + " | ".join([label] + [fmt_ci(cis[a], digits) for a in arms]
                                       + [fmt_ci(diffs[a], digits) for a in others]) + " |")
    return "\n".join(lines) + "\n", data


def plot(runs, data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = [a for a in ARMS if a in runs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in ((axes[0], "entropy_sampled", "entropy of sampled tokens (nats)"),
                           (axes[1], "accuracy", "train accuracy (sampled)")):
        for a in arms:
            curves = []
            for s in data["seeds"]:
                rl = runs[a][s]["rl"]
                steps, y = [r["step"] for r in rl], smooth([r.get(key, np.nan) for r in rl])
                ax.plot(steps, y, color=COLOR[a], alpha=0.3, lw=0.8)
                curves.append((steps, y))
            n = min(len(c[0]) for c in curves)
            ax.plot(curves[0][0][:n], np.nanmean([c[1][:n] for c in curves], axis=0),
                    color=COLOR[a], lw=2, label=f"{LABEL[a]} (mean of {len(curves)})")
        ax.set_title(title)
        ax.set_xlabel("RL step")
        ax.legend()
    ax = axes[2]
    ks = data["ks"]
    sft = data["rows"]
    for which, style in (("after_sft", ":"), ("after_rl", "-")):
        for a in arms:
            if which == "after_sft" and a != "grpo":
                continue  # the arms of a seed share their SFT model
            ci = [sft[f"held-out pass@{k} {which.replace('_', ' ')}"]["ci"][a] for k in ks]
            mean = [c["mean"] for c in ci]
            name = "SFT model" if which == "after_sft" else LABEL[a]
            ax.plot(ks, mean, style, color="black" if which == "after_sft" else COLOR[a],
                    marker="o", label=name)
            if all("lo" in c for c in ci):
                ax.fill_between(ks, [c["lo"] for c in ci], [c["hi"] for c in ci], alpha=0.15,
                                color="black" if which == "after_sft" else COLOR[a])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_title("held-out pass@k (95% t-band over seeds)")
    ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

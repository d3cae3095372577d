"""Results a user can look at: a markdown table (after SFT vs after RL) and a PNG of the curves."""
import os
from typing import Dict, List


def results_table(rows: List[Dict]) -> str:
    evals = [r for r in rows if r["phase"] == "eval"]
    if not evals:
        return "(no evaluation rows)"
    first, last = evals[0], evals[-1]
    keys = [k for k in first if k not in ("phase", "step")]
    lines = ["| checkpoint | rl step | " + " | ".join(keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for name, r in (("after SFT", first), ("after RL", last)):
        lines.append(f"| {name} | {r['step']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def plot_curves(rows: List[Dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    sft = [r for r in rows if r["phase"] == "sft"]
    rl = [r for r in rows if r["phase"] == "rl"]
    ev = [r for r in rows if r["phase"] == "eval"]
    if sft:
        axes[0].plot([r["step"] for r in sft], [r["loss"] for r in sft])
    axes[0].set(title="SFT loss", xlabel="sft step")
    if rl:
        axes[1].plot([r["step"] for r in rl], [r["reward_mean"] for r in rl], label="train reward")
    for k in [k for k in (ev[0] if ev else {}) if k not in ("phase", "step")]:
        axes[2].plot([r["step"] for r in ev], [r[k] for r in ev], marker="o", label=k)
    axes[1].set(title="RL train reward", xlabel="rl step")
    axes[2].set(title="held-out eval", xlabel="rl step")
    axes[2].legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(workdir: str, rows: List[Dict], cfg) -> str:
    table = results_table(rows)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(f"# {cfg.algo.name} on {cfg.task.name} (seed {cfg.seed})\n\n{table}\n")
    plot_curves(rows, os.path.join(workdir, "curves.png"))
    return table + f"\n(table: {workdir}/results.md, plot: {workdir}/curves.png)"

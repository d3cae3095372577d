"""Results a user can look at: a markdown table (after SFT, or before RL, vs after RL) and a PNG
of the curves."""
import os
from typing import Dict, List

# y-axis labels: the SFT loss is the token-mean NLL (rlpt.step.sft_loss_and_grads); reward_mean
# the mean reward over the step's samples; every eval metric (greedy_acc, pass@k, rates) a fraction
LOSS_LABEL = "loss (nats/token)"
REWARD_LABEL = "reward (mean over samples)"
EVAL_LABEL = "accuracy / rate (fraction of prompts)"


def results_table(rows: List[Dict]) -> str:
    """The first and last evaluation of the RL phase; the first is "after SFT" when the run had
    an SFT phase (rows of phase "sft"), else "before RL"."""
    evals = [r for r in rows if r["phase"] == "eval"]
    if not evals:
        return "(no evaluation rows)"
    first, last = evals[0], evals[-1]
    keys = [k for k in first if k not in ("phase", "step")]
    lines = ["| checkpoint | rl step | " + " | ".join(keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    start = "after SFT" if any(r["phase"] == "sft" for r in rows) else "before RL"
    for name, r in ((start, first), ("after RL", last)):
        lines.append(f"| {name} | {r['step']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def is_rate(key: str) -> bool:
    """Whether an eval metric is a fraction (the eval panel's axis): not a count of turns nor a
    mean reward (an environment's rubric is not bounded by 1); those stay in the table."""
    return key not in ("phase", "step") and not key.endswith(("_turns", "_reward"))


def curves_figure(rows: List[Dict], title: str = "run"):
    """The Figure (not saved): SFT loss, RL train reward and the held-out evaluation's rates
    (`is_rate`) over steps, each panel titled and both axes labelled, under the suptitle
    `title`."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(14, 4.2))
    axes = fig.subplots(1, 3)
    sft = [r for r in rows if r["phase"] == "sft"]
    rl = [r for r in rows if r["phase"] == "rl"]
    ev = [r for r in rows if r["phase"] == "eval"]
    if sft:
        axes[0].plot([r["step"] for r in sft], [r["loss"] for r in sft])
    else:
        axes[0].text(0.5, 0.5, "no SFT phase in this run", ha="center", va="center",
                     transform=axes[0].transAxes)
    if rl:
        axes[1].plot([r["step"] for r in rl], [r["reward_mean"] for r in rl])
    for k in [k for k in (ev[0] if ev else {}) if is_rate(k)]:
        axes[2].plot([r["step"] for r in ev], [r[k] for r in ev], marker="o", label=k)
    axes[0].set(title="SFT loss (token-mean NLL)", xlabel="SFT step", ylabel=LOSS_LABEL)
    axes[1].set(title="RL train reward", xlabel="RL step", ylabel=REWARD_LABEL)
    axes[2].set(title="held-out eval", xlabel="RL step", ylabel=EVAL_LABEL)
    if ev:
        axes[2].legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    fig.suptitle(f"{title}: SFT loss, RL train reward, held-out eval")
    fig.tight_layout()
    return fig


def plot_curves(rows: List[Dict], path: str, title: str = "run") -> None:
    curves_figure(rows, title).savefig(path, dpi=110)


def write_report(workdir: str, rows: List[Dict], cfg) -> str:
    table = results_table(rows)
    title = f"{cfg.algo.name} on {cfg.task.name} (seed {cfg.seed})"
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(f"# {title}\n\n{table}\n")
    plot_curves(rows, os.path.join(workdir, "curves.png"), title)
    return table + f"\n(table: {workdir}/results.md, plot: {workdir}/curves.png)"

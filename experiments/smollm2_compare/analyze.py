"""GRPO against GSPO (arXiv 2507.18071) and GMPO (arXiv 2507.20673) with off-policy minibatches
on SmolLM2-135M-Instruct, from a sweep of configs/smollm2_compare.py (the pilot too):

    python experiments/smollm2_compare/analyze.py runs/smollm2_compare [--out DIR] [--stem NAME]

Arms by algorithm, with the learning rate in the label when the sweep has several. From the RL
rows (early: the first 10% of steps, late: the last 25%): the sampled train accuracy, the
entropy of the sampled tokens, the clipped fraction and the response length. Held-out (64 word
problems, greedy and 8 draws, the same draws in every run): the base model's and after RL, and
the change. Writes `<stem>.md` (mean and 95% Student-t interval over seeds per arm; with GRPO
and one rate, the per-seed differences arm - GRPO and the verdict of the rule in README.md),
`<stem>.json` and `<stem>.png` (train accuracy and entropy per step, each seed).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, comparison_table, heldout_rows, last_rl_step,
    rl_window_rows, save_figure, seed_curves_figure, summary_value)
from experiments.lr_grid import load_grid  # noqa: E402

ORDER = ("grpo", "gspo", "gmpo", "dr_grpo")
NAMES = {"grpo": "GRPO", "gspo": "GSPO", "gmpo": "GMPO", "dr_grpo": "Dr. GRPO"}
RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3),
              ("clip_frac", "clipped fraction", 3),
              ("response_len", "response length (tokens)", 1)]
CHANGE = "held-out greedy_acc, after RL - base"


def load(sweep_dir):
    """Runs by `<algo>@<lr>` (experiments/lr_grid.load_grid's algorithm and rate)."""
    return {f"{algo}@{lr:g}": by_seed for algo, by_lr in load_grid(sweep_dir).items()
            for lr, by_seed in by_lr.items()}


def arms_of(runs):
    return sorted(runs, key=lambda a: (ORDER.index(a.split("@")[0]), float(a.split("@")[1])))


def labels(runs):
    rates = {a.split("@")[1] for a in runs}
    return {a: NAMES[a.split("@")[0]] + (f", lr {a.split('@')[1]}" if len(rates) > 1 else "")
            for a in runs}


def verdict(rows, grpo: str, others) -> str:
    """README's rule: an arm is stable where GRPO is not if its held-out greedy accuracy after
    RL is above GRPO's (paired interval above 0) and its mean is not below the base model's."""
    after = rows["held-out greedy_acc after rl"]
    stable = [a for a in others if after[f"diff_vs_{grpo}"][a]["lo"] > 0
              and rows[CHANGE]["ci"][a]["mean"] >= 0]
    word = ("reproduced" if len(stable) == len(others) else "partly" if stable
            else "not reproduced")
    names = ", ".join(NAMES[a.split("@")[0]] for a in stable) or "none"
    return f"**Verdict by the rule: {word}** (arms above GRPO and not below the base model: {names})."


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    change = lambda run: (summary_value(run, "after_rl", "greedy_acc")
                          - summary_value(run, "after_sft", "greedy_acc"))
    rows = (rl_window_rows(steps, RL_METRICS)
            + heldout_rows(["greedy_acc", "pass@1", "pass@8"]) + [(CHANGE, change, 3)])
    text, data = comparison_table(
        runs, arms, labels(runs), rows, arms[0],
        f"SmolLM2-135M-Instruct, word problems; 'after sft' = the base model (no SFT); RL steps "
        f"{steps} of 4 prompts x 8 samples, each batch used for 4 epochs x 4 minibatches; early "
        "= the first 10%, late = the last 25%; ")
    rates = {a.split("@")[1] for a in arms}
    if arms[0].startswith("grpo@") and len(rates) == 1 and len(arms) > 1 and len(data["seeds"]) > 1:
        text += "\n" + verdict(data["rows"], arms[0], arms[1:]) + "\n"
    return text + "\n", dict(data, steps=steps)


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    fig, _ = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS[:3]],
                                labels(runs), colors)
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "compare", table, plot, load=load)

"""Agent Lightning (arXiv 2508.03680) at this scale (issue 27, claim 11), from a sweep of
configs/agent_lightning.py:

    python experiments/agent_lightning/analyze.py runs/agent_lightning [--out DIR]

Two arms from one SFT model per seed: whole-trajectory GRPO (`grpo`) and LightningRL's
per-call loss (`lightning_rl`). From the RL rows (early: the first 10% of RL steps, late: the
last 25%): train accuracy, calls per sample and response length (model tokens); held-out (256
prompts, each arm with the calculator in its rollout): greedy accuracy after SFT, and after RL
greedy accuracy, pass@1, pass@4, the call rate of the samples and of the greedy answers.
Writes `results.md` (mean and 95% Student-t interval over seeds per arm, and of the per-seed
difference lightning_rl - grpo), `results.json` and `results.png` (held-out curves).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, plot_eval_curves,
    rl_window_rows)

ARMS = ("grpo", "lightning_rl")
LABELS = {"grpo": "GRPO (whole trajectory)", "lightning_rl": "LightningRL (per call)"}
RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("calls_per_sample", "tool calls per sample", 2),
              ("response_len", "response length (model tokens)", 1)]
HELDOUT_AFTER_RL = ["greedy_acc", "pass@1", "pass@4", "call_rate", "greedy_call_rate"]

load = functools.partial(load_arms, arm_of=lambda overrides, cfg: cfg["algo"]["name"],
                         known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    steps = last_rl_step(runs, arms)
    rows = (rl_window_rows(steps, RL_METRICS) + heldout_rows(["greedy_acc"], ["after_sft"])
            + heldout_rows(HELDOUT_AFTER_RL, ["after_rl"]))
    text, data = comparison_table(
        runs, arms, LABELS, rows, "grpo",
        f"`a*b+c=` (3x2-digit product plus a 3-digit addend), two calls per calling episode; RL "
        f"steps {steps}; early = the first 10%, late = the last 25%; ")
    return text + "\n", dict(data, steps=steps)


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    plot_eval_curves(runs, arms, [("greedy_acc", "held-out greedy accuracy"),
                                  ("pass@1", "held-out pass@1"),
                                  ("call_rate", "held-out call rate (samples)")],
                     LABELS, {"grpo": "C0", "lightning_rl": "C1"}, "RL step",
                     "Whole-trajectory GRPO vs LightningRL's per-call loss (tiny model)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""ToolRL (arXiv 2504.13958; issue 27, claim 10) from a sweep of configs/toolrl_function_call.py:

    python experiments/toolrl_function_call/analyze.py runs/toolrl [--out DIR]

Arms: `fine` (GRPO on ToolRL's fine-grained format + correctness reward), `binary` (GRPO on the
exact call match) and `sft` (the gold calls' NLL, same steps and prompts); every arm of a seed
starts from the same SFT model. Per arm: held-out greedy accuracy and pass@k (exact calls) after
SFT and after training, overall and per kind (single calls, seen tool pairs, held-out tool pairs),
and the train accuracy over the last quarter of the steps; the per-seed difference arm - binary.
Writes `results.md`, `results.json` and `results.png` (held-out curves).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, late_mean, load_arms, plot_eval_curves)

ARMS = ("binary", "fine", "sft")
LABELS = {"binary": "GRPO, binary reward", "fine": "GRPO, ToolRL fine-grained reward",
          "sft": "SFT, same steps"}
COLORS = {"binary": "tab:blue", "fine": "tab:red", "sft": "tab:gray"}
KINDS = {"": "all", "_d0": "single calls", "_d1": "seen pairs", "_d2": "held-out pairs"}


def arm_of(overrides, cfg):
    if cfg["algo"]["name"] == "sft":
        return "sft"
    return "fine" if cfg["reward"].get("proxy") == "toolrl_fine_grained" else "binary"


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    keys = [f"{k}{d}" for d in KINDS for k in ("greedy_acc", "pass@1", "pass@8")]
    rows = heldout_rows(keys)
    rows.append(("train accuracy (exact calls, sampled), last 25% of steps",
                 lambda run: late_mean(run, "accuracy"), 3))
    note = ("Exact-call accuracy; _d0 single calls, _d1 seen tool pairs, _d2 held-out tool pairs; "
            "after SFT and after 200 training steps; ")
    return comparison_table(runs, arms, LABELS, rows, "binary" if "binary" in arms else arms[0],
                            note)


def plot(runs, data, path):
    plot_eval_curves(runs, [a for a in ARMS if a in runs],
                     [("greedy_acc_d1", "held-out greedy, seen pairs"),
                      ("greedy_acc_d2", "held-out greedy, held-out pairs"),
                      ("pass@1_d2", "held-out pass@1, held-out pairs")],
                     LABELS, COLORS, "training step",
                     "ToolRL's fine-grained reward vs a binary reward vs SFT (tiny model)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""Length of correct vs incorrect responses over RL training, GRPO vs Dr. GRPO, from a sweep of
configs/dr_grpo_length.py:

    python experiments/dr_grpo_length/analyze.py runs/dr_grpo_length [--out DIR]

(DIR defaults to runs/dr_grpo_length/analysis/.)

Reads points/*/metrics.jsonl (the RL rows' `reward_response_len_correct` / `_wrong`: the mean
length, eos included, of the step's correct / incorrect sampled responses;
`reward_excess_len_*`: the same minus each problem's own worked-solution length; `accuracy`;
`stopped_frac`) and points/*/summary.json (held-out evaluation after SFT and after RL). Per
seed it averages each metric over an early window (the first 10% of RL steps) and a late window
(the last 25%); a step where every response is correct (or every one wrong) has no wrong
(correct) length and is skipped for that metric (experiments.analysis.length_rows). Prints and
writes `lengths.md` (mean and 95% Student-t interval over seeds per arm, and of the paired
per-seed difference Dr. GRPO - GRPO: both arms of a seed start from the same SFT model) and
`lengths.png`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, comparison_table, early_late, heldout_rows, last_rl_step,
    length_rows, save_figure, seed_curves_figure)

ARMS = ("grpo", "dr_grpo")
LABELS = {"grpo": "GRPO", "dr_grpo": "Dr. GRPO"}
COLORS = {"grpo": "tab:red", "dr_grpo": "tab:blue"}


def table(runs):
    steps = last_rl_step(runs, ARMS)
    (e0, e1), (l0, l1) = early_late(steps)
    rows = (length_rows(steps) + heldout_rows(["greedy_acc"], ["after_sft"])
            + heldout_rows(["greedy_acc", "pass@1", "pass@8"], ["after_rl"]))
    return comparison_table(runs, ARMS, LABELS, rows, "grpo",
                            f"RL steps {steps}; early = steps {e0}-{e1}, late = steps {l0}-{l1}; ")


def plot(runs, data, path):
    panels = [("reward_response_len_wrong", "length of INCORRECT responses (tokens)"),
              ("reward_response_len_correct", "length of CORRECT responses (tokens)"),
              ("reward_excess_len_wrong", "INCORRECT: length - own worked solution"),
              ("accuracy", "train accuracy (sampled)")]
    fig, _ = seed_curves_figure(runs, ARMS, data["seeds"], panels, LABELS, COLORS)
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "lengths", table, plot)

"""A mixed verifiable + preference reward (Lanchantin et al., arXiv 2506.21495), from a sweep of
configs/mixed_reward.py:

    python experiments/mixed_reward/analyze.py runs/mixed_reward [--out DIR]

Four arms from one SFT model per seed, differing in the prompts RL draws and their reward:
`verifiable` (addition, the rule), `preference` (multiplication, the reward model), `mixed` (both,
each with its own reward) and `mixed_rule` (both, the rule on both). From the RL rows (early: the
first 10% of steps, late: the last 25%): the optimised reward, the reward model's score and the
sampled accuracy (the truth). Held-out (128 prompts of each task, scored by the truth): greedy
accuracy and pass@1 per task after SFT and after RL, and their mean over the two tasks. Writes
`results.md` (mean and 95% Student-t interval over seeds per arm, the per-seed differences
arm - mixed, and the verdict of the rule in README.md), `results.json` and `results.png`
(held-out curves per task).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, plot_eval_curves,
    rl_window_rows, summary_value)

ARMS = ("mixed", "verifiable", "preference", "mixed_rule")
LABELS = {"mixed": "mixed (rule + RM)", "verifiable": "addition only (rule)",
          "preference": "multiplication only (RM)", "mixed_rule": "mixed (rule on both)"}
RL_METRICS = [("reward_mean", "optimised reward (sampled)", 3),
              ("reward_rm_score", "reward model score, every row (sampled)", 3),
              ("accuracy", "train accuracy (sampled, the truth)", 3)]
MEAN = "held-out greedy_acc after rl, mean of the two tasks"
ADD, MUL = "held-out greedy_acc_d0 after rl", "held-out greedy_acc_d1 after rl"
MARGIN = 0.05   # README's rule: within 0.05 of the single-task arm on its own task


def arm_of(overrides, cfg):
    train = cfg["task"]["kwargs"]["train"]
    if train == -1:
        return "mixed" if cfg["reward"]["kind"] == "reward_model" else "mixed_rule"
    return {0: "verifiable", 1: "preference"}[train]


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def verdict(rows) -> str:
    """README's rule, from the paired differences arm - mixed."""
    def diff(label, arm):
        return rows[label]["diff_vs_mixed"][arm]
    # (1) mixed's mean over the tasks above each single-task arm's: arm - mixed entirely below 0
    mean_above = all(diff(MEAN, a)["hi"] < 0 for a in ("verifiable", "preference"))
    # (2) within MARGIN of the specialist on its own task: specialist - mixed's upper end < MARGIN
    keeps = diff(ADD, "verifiable")["hi"] < MARGIN and diff(MUL, "preference")["hi"] < MARGIN
    word = ("reproduced" if mean_above and keeps else "partly" if mean_above
            else "not reproduced")
    return (f"**Verdict by the rule: {word}** ((1) mean of the two tasks above both single-task "
            f"arms: {'yes' if mean_above else 'no'}; (2) within {MARGIN} of each specialist on "
            f"its own task: {'yes' if keeps else 'no'}).")


def table(runs):
    arms = [a for a in ARMS if a in runs]
    steps = last_rl_step(runs, arms)
    rows = (rl_window_rows(steps, RL_METRICS)
            + heldout_rows(["greedy_acc_d0", "greedy_acc_d1", "pass@1_d0", "pass@1_d1"])
            + [(MEAN, lambda run: summary_value(run, "after_rl", "greedy_acc"), 3)])
    text, data = comparison_table(
        runs, arms, LABELS, rows, "mixed",
        f"d0 = addition (the verifiable task), d1 = multiplication (the reward model's task); "
        f"RL steps {steps}; early = the first 10%, late = the last 25%; held-out scores are the "
        "truth, 128 prompts of each task (greedy_acc = the mean of the two); ")
    if all(a in runs for a in ("mixed", "verifiable", "preference")):
        text += "\n" + verdict(data["rows"]) + "\n"
    return text + "\n", dict(data, steps=steps)


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    plot_eval_curves(runs, arms, [("greedy_acc_d0", "held-out greedy, addition (rule)"),
                                  ("greedy_acc_d1", "held-out greedy, multiplication (RM)"),
                                  ("greedy_acc", "held-out greedy, mean of the two")],
                     LABELS, {"mixed": "C3", "verifiable": "C0", "preference": "C1",
                              "mixed_rule": "C2"}, "RL step",
                     "Rule, reward model, or both in one run (tiny model)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""1-shot RLVR against full-data RL on SmolLM2-135M-Instruct (arXiv 2504.20571), from a sweep of
configs/smollm2_one_shot.py:

    python experiments/smollm2_one_shot/analyze.py runs/smollm2_one_shot [--out DIR]

Two arms from the same pretrained model per seed: `full` (task.kwargs.index -1: fresh word
problems every step) and `1-shot` (one pool example repeated). From the RL rows (early: the
first 10% of steps, late: the last 25%): the sampled train accuracy (the 1-shot arm's is on its
one example) and entropy. Held-out, per task (d0: word problems, the trained task; d1: plain sums
"What is a + b?", never trained): greedy accuracy, pass@1 and pass@8 of the base model and after
RL, and the gain over the base model. Writes `results.md` (mean and 95% Student-t interval over
seeds per arm, the per-seed difference 1-shot - full, and the verdict of the rule in
README.md), `results.json` and `results.png` (held-out curves per task).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_runs, plot_eval_curves,
    rl_window_rows, summary_value)

FULL = "-1"   # task.kwargs.index of the full-data arm (rlpt/tasks/one_shot.py)
load = functools.partial(load_runs, arm_pattern=r"task\.kwargs\.index=(-?\d+)")
RL_METRICS = [("accuracy", "train accuracy (sampled; 1-shot: its one example)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3)]
TASKS = {"d0": "word problems (trained)", "d1": "plain sums (not trained)"}
MARGIN = 0.05   # README's rule: 1-shot within 0.05 of full data on the trained task


def arms_of(runs):
    return [FULL] + sorted(a for a in runs if a != FULL)


def labels(runs):
    return {a: "full data" if a == FULL else f"1-shot (example {a})" for a in runs}


def gain_label(d):
    return f"held-out pass@1 on {TASKS[d]}, after RL - base"


def gain(d):
    key = f"pass@1_{d}"
    return lambda run: summary_value(run, "after_rl", key) - summary_value(run, "after_sft", key)


def verdict(rows, one_shot: str) -> str:
    """README's rule: (1) the 1-shot arm gains on the trained task, (2) it is within MARGIN of
    full data there, (3) it gains on the untrained task; all three: reproduced; (1) and one of
    the others: partly; else not reproduced."""
    trained = rows[gain_label("d0")]["ci"][one_shot]["lo"] > 0
    close = rows["held-out pass@1_d0 after rl"][f"diff_vs_{FULL}"][one_shot]["lo"] > -MARGIN
    cross = rows[gain_label("d1")]["ci"][one_shot]["lo"] > 0
    word = ("reproduced" if trained and close and cross
            else "partly" if trained and (close or cross) else "not reproduced")
    yes = lambda b: "yes" if b else "no"
    return (f"**Verdict by the rule: {word}** ((1) 1-shot gains pass@1 on the trained task: "
            f"{yes(trained)}; (2) within {MARGIN} of full data there: {yes(close)}; (3) gains on "
            f"the untrained task: {yes(cross)}).")


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    keys = [f"{m}_{d}" for d in TASKS for m in ("greedy_acc", "pass@1", "pass@8")]
    rows = (rl_window_rows(steps, RL_METRICS) + heldout_rows(keys)
            + [(gain_label(d), gain(d), 3) for d in TASKS])
    text, data = comparison_table(
        runs, arms, labels(runs), rows, FULL,
        f"SmolLM2-135M-Instruct; d0 = {TASKS['d0']}, d1 = {TASKS['d1']}; 'after sft' = the base "
        f"model (no SFT); RL steps {steps}; early = the first 10%, late = the last 25%; ")
    one_shot = [a for a in arms if a != FULL]
    if len(one_shot) == 1 and len(data["seeds"]) > 1:
        text += "\n" + verdict(data["rows"], one_shot[0]) + "\n"
    return text + "\n", dict(data, steps=steps)


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: c for a, c in zip(arms, ["tab:blue", "tab:red", "tab:orange"])}
    plot_eval_curves(runs, arms, [("pass@1_d0", f"held-out pass@1, {TASKS['d0']}"),
                                  ("pass@1_d1", f"held-out pass@1, {TASKS['d1']}"),
                                  ("greedy_acc", "held-out greedy, both tasks")],
                     labels(runs), colors, "RL step (0 = the base model)",
                     "1-shot vs full-data RL on SmolLM2-135M-Instruct", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

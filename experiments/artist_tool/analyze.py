"""ARTIST (arXiv 2505.01441) at this scale (issue 27, claim 9), from a sweep of
configs/artist_tool.py:

    python experiments/artist_tool/analyze.py runs/artist_tool [--out DIR]

An arm is a problem size and whether RL plays the calculator (`3x2 tool`, `3x2 no tool`); the
arms of a seed and size start from the same SFT model. Per size, against `no tool`: from the RL
rows, train accuracy and response length (early: the first 10% of RL steps, late: the last 25%);
held-out greedy accuracy after SFT, greedy accuracy, pass@1 and pass@4 after RL, and the greedy
accuracy RL added (after RL - after SFT: the arms start apart, since the calculator also answers
at evaluation). The
evaluation plays each arm's own rollout (with or without the calculator). Writes `results.md`
(one table per size: mean and 95% Student-t interval over seeds per arm, and of the per-seed
difference tool - no tool), `results.json` and `results.png` (held-out curves).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, plot_eval_curves,
    rl_window_rows, summary_value)

RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("response_len", "response length (model tokens)", 1)]


def arm_of(overrides, cfg):
    k = cfg["task"]["kwargs"]
    tool = "tool" if cfg["rollout"]["kind"] == "tool" else "no tool"
    return f"{k['max_digits_a']}x{k['max_digits_b']} {tool}"


load = functools.partial(load_arms, arm_of=arm_of)


def rl_gain(run):
    """What RL added to the arm's own starting point: the tool arm starts higher because the
    calculator answers at evaluation too, so the final gap is not all RL's doing."""
    return (summary_value(run, "after_rl", "greedy_acc")
            - summary_value(run, "after_sft", "greedy_acc"))


def sizes_of(runs):
    return sorted({a.split()[0] for a in runs}, reverse=True)


def table(runs):
    texts, data = [], {"sizes": {}}
    for size in sizes_of(runs):
        arms = [a for a in (f"{size} no tool", f"{size} tool") if a in runs]
        steps = last_rl_step(runs, arms)
        rows = (rl_window_rows(steps, RL_METRICS) + heldout_rows(["greedy_acc"], ["after_sft"])
                + heldout_rows(["greedy_acc", "pass@1", "pass@4"], ["after_rl"])
                + [("held-out greedy_acc gained in RL (after RL - after SFT)", rl_gain, 3)])
        text, d = comparison_table(
            {a: runs[a] for a in arms}, arms, {a: a for a in arms}, rows, arms[0],
            f"{size[0]}-digit x {size[2]}-digit products; RL steps {steps}; early = the first "
            "10%, late = the last 25%; ")
        texts.append(f"### {size}\n\n{text}")
        data["sizes"][size] = dict(d, steps=steps)
    return "\n\n".join(texts) + "\n", data


def plot(runs, data, path):
    arms = [f"{s} {t}" for s in sizes_of(runs) for t in ("tool", "no tool")
            if f"{s} {t}" in runs]
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    plot_eval_curves(runs, arms, [("greedy_acc", "held-out greedy accuracy"),
                                  ("pass@1", "held-out pass@1")], {a: a for a in arms}, colors,
                     "RL step", "RL with and without the calculator in the rollout (tiny model)",
                     path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

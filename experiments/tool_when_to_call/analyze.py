"""When to call a tool (issue 27, claim 12), from a sweep of configs/tool_when_to_call.py:

    python experiments/tool_when_to_call/analyze.py runs/tool_when_to_call [--out DIR]

An arm is the per-call charge (`cost=0.1`); every arm of a seed starts from the same SFT model.
Per seed, against cost 0: from the RL rows, the sampled call rate, calls per sample and train
accuracy (early: the first 10% of RL steps, late: the last 25%); from the held-out evaluation,
per difficulty (easy: 1-digit x 1-digit, `_d1`; hard: 3-digit x 2-digit, `_d3`), the greedy call
rate, the sampled call rate, greedy accuracy and pass@1 after SFT and after RL. "Calls only when
useful" reads as a call rate near 0 on easy prompts and near 1 on hard ones, with the hard
accuracy kept. Writes `results.md` (mean and 95% Student-t interval over seeds per arm, and of the
per-seed difference arm - cost 0), `results.json` and `results.png` (held-out curves per
difficulty).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, plot_eval_curves,
    rl_window_rows)

RL_METRICS = [("call_rate", "sampled call rate (train)", 3),
              ("calls_per_sample", "calls per sample (train)", 2),
              ("accuracy", "train accuracy (sampled)", 3)]
LEVELS = (("d1", "easy"), ("d3", "hard"))
HELDOUT = [f"{k}_{d}" for d, _ in LEVELS
           for k in ("greedy_call_rate", "call_rate", "greedy_acc", "pass@1")]


def arm_of(overrides, cfg):
    return f"cost={cfg['task']['kwargs']['call_cost']:g}"


load = functools.partial(load_arms, arm_of=arm_of)


def arms_of(runs):
    return sorted(runs, key=lambda a: float(a.split("=")[1]))


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    rows = (rl_window_rows(steps, RL_METRICS) + heldout_rows(HELDOUT, ["after_sft"])
            + heldout_rows(HELDOUT + ["greedy_acc"], ["after_rl"]))
    text, data = comparison_table(
        runs, arms, {a: a for a in arms}, rows, arms[0],
        f"RL steps {steps}; early = the first 10%, late = the last 25%; d1 = easy (1-digit x "
        "1-digit), d3 = hard (3-digit x 2-digit); ")
    data["steps"] = steps
    return text, data


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    panels = [(f"{k}_{d}", f"held-out {what} ({name})") for d, name in LEVELS
              for k, what in (("greedy_call_rate", "greedy call rate"),
                              ("greedy_acc", "greedy accuracy"))]
    plot_eval_curves(runs, arms, panels, {a: a for a in arms}, colors, "RL step",
                     "When to call: the calculator on easy and hard products, by per-call charge "
                     "(tiny model)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

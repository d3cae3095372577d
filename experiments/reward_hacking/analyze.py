"""Reward hacking (issue 27, claim 8), from a sweep of configs/reward_hacking.py:

    python experiments/reward_hacking/analyze.py runs/reward_hacking [--out DIR]

An arm is the verifier RL optimises: `exact` (the task's), `contains` (the answer anywhere in the
response: exploitable) and `contains, penalty 0.5` (the lenient verifier plus a rubric term of
-0.5 per character beyond the answer's length). Every arm of a seed starts from the same SFT
model. Per seed, against `exact`: from the RL rows, the optimised reward (`reward_mean`), the
true accuracy of the samples (`accuracy`: the exact verifier, logged beside any proxy) and the
response length, early (the first 10% of RL steps) and late (the last 25%); from the held-out
evaluation (exact answers), greedy accuracy after SFT, at its best during RL and after RL, and
pass@1 / pass@4 after RL. Writes `results.md` (mean and 95% Student-t interval over seeds per arm,
and of the per-seed difference arm - exact), `results.json` and `results.png`.
"""
import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, rl_window_rows,
    save_figure, seed_curves_figure)

RL_METRICS = [("reward_mean", "optimised reward (train)", 3),
              ("accuracy", "true accuracy of samples (exact verifier)", 3),
              ("response_len", "response length (tokens)", 2)]
ORDER = ("exact", "contains")


def arm_of(overrides, cfg):
    r = cfg["reward"]
    if not r.get("proxy"):
        return "exact"
    penalty = float(r.get("proxy_kwargs", {}).get("extra_char_penalty", 0.0))
    return "contains" if penalty == 0 else f"contains, penalty {penalty:g}"


load = functools.partial(load_arms, arm_of=arm_of)


def arms_of(runs):
    return sorted(runs, key=lambda a: (ORDER.index(a) if a in ORDER else len(ORDER), a))


def best_eval(run, key="greedy_acc"):
    return max(r[key] for r in run["eval"] if r["step"] > 0)


def table(runs):
    arms = arms_of(runs)
    steps = last_rl_step(runs, arms)
    rows = (rl_window_rows(steps, RL_METRICS) + heldout_rows(["greedy_acc"], ["after_sft"])
            + [("held-out greedy_acc, best evaluation during RL", best_eval, 3)]
            + heldout_rows(["greedy_acc", "pass@1", "pass@4"], ["after_rl"]))
    text, data = comparison_table(runs, arms, {a: a for a in arms}, rows, arms[0],
                                  f"RL steps {steps}; early = the first 10%, late = the last "
                                  "25%; held-out = exact answers; ")
    data["steps"] = steps
    return text, data


def plot(runs, data, path):
    arms = arms_of(runs)
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS],
                                   {a: a for a in arms}, colors, 1)
    ax = axes[-1]
    for a in arms:
        ev = [sorted(runs[a][s]["eval"], key=lambda r: r["step"]) for s in data["seeds"]]
        n = min(len(e) for e in ev)
        x = [r["step"] for r in ev[0][:n]]
        ax.plot(x, np.mean([[r["greedy_acc"] for r in e[:n]] for e in ev], axis=0), marker="o",
                color=colors[a], label=f"{a} (mean of {len(ev)})")
    ax.set(title="held-out greedy accuracy (exact answers)", xlabel="RL step",
           ylabel="accuracy (fraction)")
    ax.legend()
    save_figure(fig, "GRPO on an exploitable verifier: optimised reward, true accuracy, length "
                "(thin: seeds, smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

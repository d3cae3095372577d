"""Reward hacking (issue 27, claim 8), from a sweep of configs/reward_hacking.py:

    python experiments/reward_hacking/analyze.py runs/reward_hacking [--out DIR]

An arm is the verifier RL optimises: `exact` (the task's), `contains` (the answer anywhere in the
response: exploitable) and `contains, penalty 0.5` (the lenient verifier plus a rubric term of
-0.5 per character beyond the answer's length). Every arm of a seed starts from the same SFT
model. Per seed, against `exact`: from the RL rows, the optimised reward (`reward_mean`), the
true accuracy of the samples (`accuracy`: the exact verifier, logged beside any proxy) and the
response length, early (the first 10% of RL steps) and late (the last 25%); from the held-out
evaluation (exact answers), greedy accuracy after SFT, at its best during RL and after RL, and
pass@1 / pass@4 after RL (experiments.analysis.proxy_truth_table). Writes `results.md` (mean and 95% Student-t interval over seeds per arm,
and of the per-seed difference arm - exact), `results.json` and `results.png`.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, heldout_rows, load_arms, plot_proxy_truth, proxy_truth_table)

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


def table(runs):
    return proxy_truth_table(runs, arms_of(runs), RL_METRICS,
                             heldout_rows(["pass@4"], ["after_rl"]))


def plot(runs, data, path):
    plot_proxy_truth(runs, arms_of(runs), data, RL_METRICS,
                     "GRPO on an exploitable verifier: optimised reward, true accuracy, length "
                     "(thin: seeds, smoothed over 5 steps)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

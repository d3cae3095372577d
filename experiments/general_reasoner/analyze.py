"""General-Reasoner (arXiv 2505.14652) at this scale, from a sweep of configs/general_reasoner.py:

    python experiments/general_reasoner/analyze.py runs/general_reasoner [--out DIR]

Three arms from one SFT model per seed, differing only in the verifier RL optimises: `rule`
(exact digits: a zero-padded right answer scores 0), `judge` (a tiny trained generative
verifier) and `oracle` (numeric equivalence, the truth). From the RL rows (early: the first 10%
of RL steps, late: the last 25%): the optimised reward and the logged train accuracy. Held-out
(256 prompts, scored by the truth): greedy accuracy and the share of greedy answers in the padded form after SFT; after RL
greedy accuracy, pass@1, pass@4 and the padded share. Writes `results.md` (mean and 95%
Student-t interval over seeds per arm, and of the per-seed differences judge - rule and
oracle - rule), `results.json` and `results.png` (held-out curves).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, last_rl_step, load_arms, plot_eval_curves,
    rl_window_rows)

ARMS = ("rule", "judge", "oracle")
LABELS = {"rule": "rule verifier", "judge": "model verifier", "oracle": "oracle (truth)"}
# RL rows: the reward RL optimised, and the samples' accuracy as logged (the truth for `rule`,
# which logs it beside its proxy, and `oracle`; the judge's verdict > 0.5 for `judge`)
RL_METRICS = [("reward_mean", "optimised reward (sampled)", 3),
              ("accuracy", "train accuracy (rule, oracle: truth; model verifier: judge > 0.5)", 3)]


def arm_of(overrides, cfg):
    if cfg["reward"]["kind"] == "judge":
        return "judge"
    return "rule" if cfg["reward"].get("proxy", "") == "exact_answer" else "oracle"


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    steps = last_rl_step(runs, arms)
    rows = (rl_window_rows(steps, RL_METRICS)
            + heldout_rows(["greedy_acc", "greedy_leading_zero"], ["after_sft"])
            + heldout_rows(["greedy_acc", "pass@1", "pass@4", "greedy_leading_zero"],
                           ["after_rl"]))
    text, data = comparison_table(
        runs, arms, LABELS, rows, "rule",
        f"1-digit addition, half of the SFT answers zero-padded (`07`); RL steps {steps}; early = "
        "the first 10%, late = the last 25%; held-out scores are "
        "the truth (numeric equivalence); greedy_leading_zero = share of greedy answers in the "
        "padded form; ")
    return text + "\n", dict(data, steps=steps)


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    plot_eval_curves(runs, arms, [("greedy_acc", "held-out greedy accuracy (truth)"),
                                  ("pass@1", "held-out pass@1 (truth)"),
                                  ("greedy_leading_zero", "greedy answers zero-padded")],
                     LABELS, {"rule": "C0", "judge": "C1", "oracle": "C2"}, "RL step",
                     "Rule vs model verifier as the RL reward (tiny model)", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""Response length and accuracy of GRPO with and without the Kimi k1.5 length reward, from a
sweep of configs/kimi_length.py:

    python experiments/kimi_length/analyze.py runs/kimi_length [--out DIR]
    python experiments/kimi_length/analyze.py runs/kimi_length_k15 --stem results_k15
    python experiments/kimi_length/analyze.py runs/kimi_length_k15 runs/kimi_length_k15_warmup \
        --stem results_k15_warmup

(runs/kimi_length_k15_warmup: the paper's warm-up, the length reward switched on at RL step
`length_penalty_start`, started from the first sweep's SFT models with `--sft_from`; its arm is
`kimi_length_penalty_from<start>`. DIR defaults to <first sweep>/analysis/, e.g.
runs/kimi_length/analysis/.)

Per seed (experiments.analysis): the RL rows' mean response length, the length of correct and of
incorrect responses and each minus its problem's own worked-solution length (negative = a chain
shorter than the worked one), the truncated fraction and the train accuracy, over an early
window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy accuracy and
pass@k after SFT and after RL. Writes `results.md` (mean and 95% Student-t interval over seeds
per arm and of the per-seed difference length reward - GRPO: both arms of a seed start from the
same SFT model), then per seed the collapse steps (collapse_table), `results.json` and
`results.png`.
"""
import functools
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, common_seeds, length_rows, load_arms,
    rl_value, rl_window_rows, save_figure, seed_curves_figure)

NAMES = {"grpo": "GRPO", "kimi_k15": "Kimi k1.5 loss"}
COLORS = {"none": "tab:blue", "kimi_length_penalty": "tab:red"}
WARM = "kimi_length_penalty_from"
COLLAPSED_LEN = 2.0   # a step whose mean response length is below this has collapsed


def arm_of(overrides, cfg):
    """The point's algo.shaping (none | kimi_length_penalty); a length reward that starts at RL
    step N > 0 (algo.length_penalty_start, the warm-up) is `kimi_length_penalty_from<N>`."""
    arm = re.search(r"algo\.shaping=([A-Za-z0-9_]+)", overrides).group(1)
    start = cfg["algo"].get("length_penalty_start", 0)
    return f"{WARM}{start}" if arm == "kimi_length_penalty" and start else arm


load = functools.partial(load_arms, arm_of=arm_of)


def arms_of(runs):
    return ["none"] + sorted(a for a in runs if a != "none")


def labels(runs):
    """The arms' labels: the loss of the sweep (configs/kimi_length.py `algo`), with or without
    the length reward (and from which RL step)."""
    name = NAMES[next(iter(runs["none"].values()))["cfg"]["algo"]["name"]]
    return {a: name if a == "none" else f"{name} + length reward" + (
        f" from RL step {a[len(WARM):]}" if a.startswith(WARM) else "") for a in arms_of(runs)}


def first_step(run, key: str, below: float):
    """The first RL step whose logged `key` is below `below`; None if no step's is."""
    return next((r["step"] for r in run["rl"] if rl_value(r, key) < below), None)


def collapse_table(runs):
    """Per arm and seed: the first RL step whose mean response length is below COLLAPSED_LEN
    tokens, the first whose every response is the empty one (mean length 1: eos only), and the
    first whose train accuracy (sampled) is 0 ("-": none). -> (text, data)."""
    arms, lab = arms_of(runs), labels(runs)
    seeds = common_seeds(runs, arms)
    keys = [("response_len", COLLAPSED_LEN, f"length < {COLLAPSED_LEN:g}"),
            ("response_len", 1.0 + 1e-6, "all responses empty"),
            ("accuracy", 1e-9, "train accuracy 0")]
    lines = ["", f"Collapse per seed: the first RL step with mean response length below "
             f"{COLLAPSED_LEN:g} tokens, the first with every response empty (eos only, "
             "length 1), and the first with train accuracy 0 (\"-\": none).", "",
             "| arm | first step | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    data = {}
    for a in arms:
        for key, below, name in keys:
            steps = [first_step(runs[a][s], key, below) for s in seeds]
            data.setdefault(a, {})[name] = dict(zip(map(str, seeds), steps))
            lines.append(f"| {lab[a]} | {name} | " + " | ".join(
                "-" if x is None else str(x) for x in steps) + " |")
    return "\n".join(lines) + "\n", data


def table(runs):
    text, data = arms_table(runs, arms_of(runs), labels(runs), "none", lambda steps: (
        rl_window_rows(steps, [("response_len", "response length (tokens)", 1)])
        + length_rows(steps)))
    collapse_text, data["collapse"] = collapse_table(runs)
    return text + collapse_text, data


def plot(runs, data, path):
    panels = [("response_len", "response length (tokens)"),
              ("reward_excess_len_correct", "CORRECT: length - own worked solution"),
              ("reward_excess_len_wrong", "INCORRECT: length - own worked solution"),
              ("accuracy", "train accuracy (sampled)")]
    colors = {a: COLORS.get(a, "tab:purple") for a in arms_of(runs)}
    fig, _ = seed_curves_figure(runs, arms_of(runs), data["seeds"], panels, labels(runs), colors)
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

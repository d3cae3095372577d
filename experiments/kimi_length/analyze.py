"""Response length and accuracy of GRPO with and without the Kimi k1.5 length reward, from a
sweep of configs/kimi_length.py:

    python experiments/kimi_length/analyze.py runs/kimi_length [--out experiments/kimi_length]
    python experiments/kimi_length/analyze.py runs/kimi_length_k15 --stem results_k15

Per seed (rlpt.sweep_analysis): the RL rows' mean response length, the length of correct and of
incorrect responses and each minus its problem's own worked-solution length (negative = a chain
shorter than the worked one), the truncated fraction and the train accuracy, over an early
window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy accuracy and
pass@k after SFT and after RL. Writes `results.md` (mean and 95% Student-t interval over seeds
per arm and of the per-seed difference length reward - GRPO: both arms of a seed start from the
same SFT model), `results.json` and `results.png`.
"""
import functools

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, arms_table, length_rows,
                                 load_runs, rl_window_rows, save_figure, seed_curves_figure)

ARMS = ("none", "kimi_length_penalty")   # the algo.shaping of the points
NAMES = {"grpo": "GRPO", "kimi_k15": "Kimi k1.5 loss"}
COLORS = {"none": "tab:blue", "kimi_length_penalty": "tab:red"}
load = functools.partial(load_runs, arm_pattern=r"algo\.shaping=([A-Za-z0-9_]+)")


def labels(runs):
    """The arms' labels: the loss of the sweep (configs/kimi_length.py `algo`), with or without
    the length reward."""
    name = NAMES[next(iter(runs["none"].values()))["cfg"]["algo"]["name"]]
    return {"none": name, "kimi_length_penalty": f"{name} + length reward"}


def table(runs):
    return arms_table(runs, ARMS, labels(runs), "none", lambda steps: rl_window_rows(
        steps, [("response_len", "response length (tokens)", 1)]) + length_rows(steps))


def plot(runs, data, path):
    panels = [("response_len", "response length (tokens)"),
              ("reward_excess_len_correct", "CORRECT: length - own worked solution"),
              ("reward_excess_len_wrong", "INCORRECT: length - own worked solution"),
              ("accuracy", "train accuracy (sampled)")]
    fig, _ = seed_curves_figure(runs, ARMS, data["seeds"], panels, labels(runs), COLORS)
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

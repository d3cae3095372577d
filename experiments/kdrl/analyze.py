"""KDRL vs GRPO vs KD alone (arXiv 2506.02208) from a sweep of configs/kdrl_vs_grpo.py:

    python experiments/kdrl/analyze.py runs/kdrl_vs_grpo [runs/kdrl_kd1] [--out DIR]

(runs/kdrl_kd1: the follow-up arm kdrl_kd1, KDRL with KD alone's KD term, started from the first
sweep's SFT models with `--sft_from`. DIR defaults to runs/kdrl_vs_grpo/analysis/, under the
first sweep.)

Per seed (experiments.analysis), GRPO as the baseline: the RL rows' train accuracy (sampled), the
entropy of the sampled tokens, the response length, the token efficiency (the length of the
correct responses, `reward_response_len_correct`, nan at a step without one) and the KD metrics
that rlpt.losses.policy.kdrl_loss logs (`kd_k2`: mean k2(logp, teacher_logp) per token over the
responses the KD term applies to, `kd_frac`: their share of the tokens; GRPO has neither), each
over an early window (the first 10% of RL steps) and a late one (the last 25%); then the
held-out greedy accuracy and pass@k after SFT, in between and after RL. Writes `results.md`
(mean and 95% Student-t interval over seeds per arm, and of the per-seed difference arm - GRPO:
the arms of a seed start from the same SFT model), `results.json` and `results.png`.

Note: kd_k2 is not the same average in the two teacher arms: KDRL's covers only its incorrect
responses (kd_mask incorrect_response), KD alone's every response (kd_mask none).
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, load_arms, plot_pass_at_k, rl_window_rows,
    save_figure, seed_curves_figure)

ARMS = ("grpo", "kdrl", "kd", "kdrl_kd1")
LABELS = {"grpo": "GRPO", "kdrl": "KDRL", "kd": "KD alone", "kdrl_kd1": "KDRL, KD weight 1"}
COLORS = {"grpo": "tab:blue", "kdrl": "tab:red", "kd": "tab:green", "kdrl_kd1": "tab:purple"}
BASELINE = "grpo"

def arm_of(overrides, cfg):
    """The arm of configs/kdrl_vs_grpo.py a point's config is: KD alone zeroes the rewards
    (shaping dapo_reward_pm1), kdrl_kd1 puts the KD term on every response (kd_mask none)."""
    a = cfg["algo"]
    if a["name"] != "kdrl":
        return a["name"]
    if "dapo_reward_pm1" in a.get("shaping", ()):
        return "kd"
    return "kdrl_kd1" if a.get("kd_mask") == "none" else "kdrl"


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)
grid_arm = arm_of   # experiments/lr_grid.py's arm of a point of any rate of the grid


RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3),
              ("response_len", "response length (tokens)", 1),
              ("reward_response_len_correct", "token efficiency: length of correct responses", 1),
              ("reward_response_len_wrong", "length of incorrect responses", 1),
              ("kd_k2", "KD: k2(student, teacher) per token on KD'd responses", 3),
              ("kd_frac", "KD: share of tokens with the KD term", 3)]


def table(runs):
    """The arms against GRPO; with the kdrl_kd1 arm also the held-out rows of kdrl_kd1 - KD
    alone (equal KD term: what the reward adds to KD)."""
    arms = [a for a in ARMS if a in runs]
    text, data = arms_table(runs, arms, LABELS, BASELINE if BASELINE in arms else arms[0],
                            lambda steps: rl_window_rows(steps, RL_METRICS))
    if "kd" in runs and "kdrl_kd1" in runs:
        t, d = arms_table(runs, ["kd", "kdrl_kd1"], LABELS, "kd", lambda steps: [])
        text += f"\nAt equal KD strength: the reward's contribution.\n\n{t}"
        data["kdrl_kd1_vs_kd"] = d
    return text, data


PANELS = [("accuracy", "train accuracy (sampled)"),
          ("reward_response_len_correct", "length of correct responses (tokens)"),
          ("entropy_sampled", "entropy of sampled tokens (nats)"),
          ("kd_k2", "KD: k2 to the teacher per token")]


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], PANELS, LABELS, COLORS, 1)
    plot_pass_at_k(axes[len(PANELS)], data, arms, LABELS, COLORS, arms[0])
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", load=load, analyze=table, plot=plot)

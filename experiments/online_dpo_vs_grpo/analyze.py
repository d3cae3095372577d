"""Online vs semi-online vs offline DPO vs GRPO (Lanchantin et al., arXiv 2506.21495; issue 27,
claim 4), from the two sweeps of configs/online_dpo_vs_grpo.py:

    python experiments/online_dpo_vs_grpo/analyze.py runs/odpo_dpo runs/odpo_grpo [--out DIR]

Arms: `online` (online DPO, the generator synced every step), `semi` (synced every 10 steps),
`offline` (never synced: pairs sampled from the SFT model) and `grpo`. Every arm samples 8
responses for each of the same number of prompts per step, scored by the task reward, for the same
number of steps, and the arms of a seed start from the same SFT model. Per arm: held-out greedy
accuracy and pass@k after SFT and after training, and the per-seed difference arm - GRPO.
Writes `results.md`, `results.json` and `results.png` (the held-out curves).
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    analysis_main, comparison_table, heldout_rows, load_arms, plot_eval_curves)

ARMS = ("online", "semi", "offline", "grpo")
LABELS = {"online": "online DPO", "semi": "semi-online DPO (sync 10)",
          "offline": "offline DPO", "grpo": "GRPO"}
COLORS = {"online": "tab:red", "semi": "tab:orange", "offline": "tab:gray", "grpo": "tab:blue"}
KEYS = ("greedy_acc", "pass@1", "pass@8")


def arm_of(overrides, cfg):
    """The arm from the algorithm and, for online DPO, its generator's sync interval."""
    if cfg["algo"]["name"] == "grpo":
        return "grpo"
    sync = cfg["algo"]["sync_every"]
    return {1: "online", None: "offline"}.get(sync, "semi" if sync == 10 else f"sync {sync}")


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


def table(runs):
    arms = [a for a in ARMS if a in runs]
    baseline = "grpo" if "grpo" in arms else arms[0]
    return comparison_table(runs, arms, LABELS, heldout_rows(KEYS), baseline,
                            "Held-out after SFT and after training (200 updates of 32 prompts x "
                            "8 samples each); ")


def plot(runs, data, path):
    plot_eval_curves(runs, [a for a in ARMS if a in runs],
                     [("greedy_acc", "held-out greedy accuracy"), ("pass@1", "held-out pass@1")],
                     LABELS, COLORS, "training step (preference or RL update)",
                     "Online / semi-online / offline DPO vs GRPO on 1-2 digit addition", path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)

"""pass@k, entropy and accuracy of GRPO with and without the unlikeliness reward, with 1 and 2
PPO epochs, from a sweep of configs/unlikely_passk.py:

    python experiments/unlikely_passk/analyze.py runs/unlikely_passk [--out DIR]
    python experiments/unlikely_passk/analyze.py runs/unlikely_passk runs/unlikely_passk_lr \
        --stem results_lr

(runs/unlikely_passk_lr: the 2-epoch arms at RL lr 1.5e-4, started from the first sweep's SFT
models with `--sft_from`; their arms are `<shaping>/2@lr1.5e-04`; GRPO with 1 epoch at that lr
is `none/1@lr1.5e-04`. DIR defaults to runs/unlikely_passk/analysis/, under the first sweep.)

Per seed (experiments.analysis): the RL rows' train accuracy and entropy of the sampled tokens
over an early window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy
accuracy and pass@1..32 after SFT and after RL. Writes `results.md` (mean and 95% Student-t
interval over seeds per arm, and of the per-seed difference arm - GRPO with 1 epoch: the arms of
a seed start from the same SFT model), `results.json` and `results.png`.
"""

import functools
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, arms_table, load_arms, plot_pass_at_k, rl_window_rows,
    save_figure, seed_curves_figure)

RECIPE_LR = 3e-4   # configs.recipes.scratchpad_run's RL learning rate
HALF = "@lr1.5e-04"
ARMS = ("none/1", "none/2", "unlikeliness/1", "unlikeliness/2", "none/1" + HALF,
        "none/2" + HALF, "unlikeliness/2" + HALF)   # algo.shaping / ppo_epochs [@ another RL lr]
LABELS = {"none/1": "GRPO", "none/2": "GRPO 2 epochs", "unlikeliness/1": "unlikeliness",
          "unlikeliness/2": "unlikeliness 2 epochs", "none/1" + HALF: "GRPO, lr/2",
          "none/2" + HALF: "GRPO 2 epochs, lr/2",
          "unlikeliness/2" + HALF: "unlikeliness 2 epochs, lr/2"}
COLORS = {"none/1": "tab:blue", "none/2": "tab:cyan", "unlikeliness/1": "tab:red",
          "unlikeliness/2": "tab:orange", "none/1" + HALF: "tab:gray",
          "none/2" + HALF: "tab:purple", "unlikeliness/2" + HALF: "tab:brown"}


def grid_arm(overrides, cfg=None):
    """`<shaping>/<epochs>` of a point name `algo.shaping=X,rl.ppo_epochs=E[,...]` (also
    experiments/lr_grid.py's arm of a point of any rate of the grid)."""
    shaping, epochs = re.search(r"algo\.shaping=([A-Za-z0-9_]+),rl\.ppo_epochs=(\d+)",
                                overrides).groups()
    return f"{shaping}/{epochs}"


def arm_of(overrides, cfg):
    """grid_arm, `@lr<lr>` added when the sweep's RL learning rate is not the recipe's."""
    lr = cfg["optim"]["lr"]
    return grid_arm(overrides) + ("" if lr == RECIPE_LR else f"@lr{lr:.1e}")


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)


RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3)]


def table(runs):
    """Every arm against GRPO with 1 epoch; then, for each schedule that has both rewards,
    unlikeliness against GRPO on that same schedule (the paper's comparison)."""
    text, data = arms_table(runs, [a for a in ARMS if a in runs], LABELS, "none/1",
                            lambda steps: rl_window_rows(steps, RL_METRICS))
    data["same_schedule"], data["epochs_at_one_lr"] = {}, {}
    for schedule in [a[len("none/"):] for a in ARMS if a.startswith("none/")]:
        pair = [f"none/{schedule}", f"unlikeliness/{schedule}"]
        if all(a in runs for a in pair):
            t, d = arms_table(runs, pair, LABELS, pair[0], lambda steps: [])
            text += (f"\nThe two rewards on one schedule: {LABELS[pair[0]]} vs "
                     f"{LABELS[pair[1]]}.\n\n{t}")
            data["same_schedule"][schedule] = d
    for lr in ("", HALF):   # 1 vs 2 epochs of GRPO at the same learning rate
        pair = [f"none/1{lr}", f"none/2{lr}"]
        if all(a in runs for a in pair):
            t, d = arms_table(runs, pair, LABELS, pair[0], lambda steps: [])
            text += (f"\nEpochs at one learning rate: {LABELS[pair[0]]} vs "
                     f"{LABELS[pair[1]]}.\n\n{t}")
            data["epochs_at_one_lr"][lr or "recipe"] = d
    return text, data


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS],
                                   LABELS, COLORS, 1)
    plot_pass_at_k(axes[2], data, arms, LABELS, COLORS, "none/1")
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", load=load, analyze=table, plot=plot)

"""pass@k, entropy and accuracy of GRPO with and without the unlikeliness reward, with 1 and 2
PPO epochs, from a sweep of configs/unlikely_passk.py:

    python experiments/unlikely_passk/analyze.py runs/unlikely_passk [--out experiments/unlikely_passk]

Per seed (rlpt.sweep_analysis): the RL rows' train accuracy and entropy of the sampled tokens
over an early window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy
accuracy and pass@1..32 after SFT and after RL. Writes `results.md` (mean and 95% Student-t
interval over seeds per arm, and of the per-seed difference arm - GRPO with 1 epoch: the arms of
a seed start from the same SFT model), `results.json` and `results.png`.
"""
import functools

import matplotlib

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, comparison_table, early_late,
                                 heldout_rows, last_rl_step, load_runs, pass_ks, plot_pass_at_k,
                                 plot_seed_curves, rl_value, save_figure, windowed)

ARMS = ("none/1", "none/2", "unlikeliness/1", "unlikeliness/2")   # algo.shaping / ppo_epochs
LABELS = {"none/1": "GRPO", "none/2": "GRPO 2 epochs", "unlikeliness/1": "unlikeliness",
          "unlikeliness/2": "unlikeliness 2 epochs"}
COLORS = {"none/1": "tab:blue", "none/2": "tab:cyan", "unlikeliness/1": "tab:red",
          "unlikeliness/2": "tab:orange"}


def load(sweep_dir):
    """Runs by arm `<shaping>/<epochs>` (point names `algo.shaping=X,rl.ppo_epochs=E,seed=N`)."""
    runs = load_runs(sweep_dir, arm_pattern=r"algo\.shaping=([A-Za-z0-9_]+,rl\.ppo_epochs=\d+)")
    return {arm.replace(",rl.ppo_epochs=", "/"): by_seed for arm, by_seed in runs.items()}


def table(runs):
    arms = [a for a in ARMS if a in runs]
    steps = last_rl_step(runs, arms)
    ks = pass_ks(next(iter(runs[arms[0]].values()))["summary"]["after_rl"])
    (e0, e1), (l0, l1) = early_late(steps)
    rows = [(f"{name}, {w}", windowed(key, w, steps), 3)
            for key, name in (("accuracy", "train accuracy (sampled)"),
                              ("entropy_sampled", "entropy of sampled tokens (nats)"))
            for w in ("early", "late")]
    rows += heldout_rows(["greedy_acc"] + [f"pass@{k}" for k in ks])
    text, data = comparison_table(runs, arms, LABELS, rows, "none/1", f"RL steps {steps}; early = "
                                  f"steps {e0}-{e1}, late = steps {l0}-{l1}; ")
    data.update(steps=steps, ks=ks)
    return text, data


def plot(runs, data, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = [a for a in ARMS if a in runs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in ((axes[0], "accuracy", "train accuracy (sampled)"),
                           (axes[1], "entropy_sampled", "entropy of sampled tokens (nats)")):
        plot_seed_curves(ax, runs, arms, data["seeds"], lambda r, k=key: rl_value(r, k), LABELS,
                         COLORS, title)
    plot_pass_at_k(axes[2], data, arms, LABELS, COLORS, "none/1")
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", load=load, analyze=table, plot=plot)

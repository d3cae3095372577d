"""pass@k, entropy and accuracy of GRPO with and without the unlikeliness reward, with 1 and 2
PPO epochs, from a sweep of configs/unlikely_passk.py:

    python experiments/unlikely_passk/analyze.py runs/unlikely_passk [--out experiments/unlikely_passk]

Per seed (rlpt.sweep_analysis): the RL rows' train accuracy and entropy of the sampled tokens
over an early window (the first 10% of RL steps) and a late one (the last 25%); held-out greedy
accuracy and pass@1..32 after SFT and after RL. Writes `results.md` (mean and 95% Student-t
interval over seeds per arm, and of the per-seed difference arm - GRPO with 1 epoch: the arms of
a seed start from the same SFT model), `results.json` and `results.png`.
"""

from rlpt.sweep_analysis import (SEED_CURVES_TITLE, analysis_main, arms_table, load_runs,
                                 plot_pass_at_k, rl_window_rows, save_figure, seed_curves_figure)

ARMS = ("none/1", "none/2", "unlikeliness/1", "unlikeliness/2")   # algo.shaping / ppo_epochs
LABELS = {"none/1": "GRPO", "none/2": "GRPO 2 epochs", "unlikeliness/1": "unlikeliness",
          "unlikeliness/2": "unlikeliness 2 epochs"}
COLORS = {"none/1": "tab:blue", "none/2": "tab:cyan", "unlikeliness/1": "tab:red",
          "unlikeliness/2": "tab:orange"}


def load(sweep_dir):
    """Runs by arm `<shaping>/<epochs>` (point names `algo.shaping=X,rl.ppo_epochs=E,seed=N`)."""
    runs = load_runs(sweep_dir, arm_pattern=r"algo\.shaping=([A-Za-z0-9_]+,rl\.ppo_epochs=\d+)")
    return {arm.replace(",rl.ppo_epochs=", "/"): by_seed for arm, by_seed in runs.items()}


RL_METRICS = [("accuracy", "train accuracy (sampled)", 3),
              ("entropy_sampled", "entropy of sampled tokens (nats)", 3)]


def table(runs):
    return arms_table(runs, [a for a in ARMS if a in runs], LABELS, "none/1",
                      lambda steps: rl_window_rows(steps, RL_METRICS))


def plot(runs, data, path):
    arms = [a for a in ARMS if a in runs]
    fig, axes = seed_curves_figure(runs, arms, data["seeds"], [m[:2] for m in RL_METRICS],
                                   LABELS, COLORS, 1)
    plot_pass_at_k(axes[2], data, arms, LABELS, COLORS, "none/1")
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", load=load, analyze=table, plot=plot)

"""GSPO (arXiv 2507.18071) and GMPO vs GRPO: stability with off-policy minibatches at a high
learning rate, on scratchpad addition (experiments/gspo_gmpo_stability/).

    python -m rlpt.sweep --config=configs/gspo_gmpo_stability.py --workdir=runs/gspo_gmpo_stability
    python -m rlpt.sweep --config=configs/gspo_gmpo_stability.py:arms=grpo,lrs=1e-4/3e-4/1e-3,seeds=2,seed_start=10 --workdir=runs/gspo_gmpo_pilot

The recipe of configs/dr_grpo_length.py (tiny model from scratch, 300 SFT steps on 1-3 digit
worked solutions, 16 prompts x 8 samples per RL step at temperature 1, no KL term), with
rl.ppo_epochs=2 x rl.minibatches=2: each batch of samples is used for 4 optimizer updates, the
last three off-policy, so the importance ratios move away from 1 and the clips can bind. The
arms differ only in what their paper defaults differ in (the DEFAULTS of each rlpt/algorithms/<name>.py):

* grpo: token-level ratio, clip 1 +- 0.2, `seq_mean_token_mean`;
* gspo: one sequence-level ratio (the geometric mean of the token ratios), clip
  [1 - 3e-4, 1 + 4e-4], log-ratio clamp 10;
* gmpo: the geometric mean of the token-level clipped ratios, clip in log space e^-0.4 .. e^0.4.

All three use the GRPO advantage ((r - group mean) / group std over 8 samples). The learning
rate (the `lrs` axis, the same for every arm; default 3e-4) was chosen from GRPO-only pilots by
the rule stated in experiments/gspo_gmpo_stability/README.md. Held-out greedy accuracy and pass@k on 128
prompts (8 samples) after SFT and every rl_steps / evals RL steps.

Arguments (after ':'): algo (for get_config), seed, size, seeds and seed_start (get_sweep: the
seeds seed_start .. seed_start + seeds - 1), arms ('/'-separated), lrs ('/'-separated RL learning
rates, an axis), quick (1 = a seconds-long smoke version), rl_steps, sft_steps, batch, max_new,
epochs (rl.ppo_epochs), minibatches, evals.
"""
from configs.recipes import SCRATCHPAD_ARGS, comparison_config, lr_axis, scratchpad_run
from rlpt.config import parse_arg

ARGS = dict({k: v for k, v in SCRATCHPAD_ARGS.items() if k != "lr"},  # `lrs` sets it
            algo="grpo", seeds=5, seed_start=0, rl_steps=60, lrs="3e-4", epochs=2,
            minibatches=2, evals=6, arms="grpo/gspo/gmpo")
ALGOS = ("grpo", "gspo", "gmpo")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    a["lr"] = float(a["lrs"].split("/")[0])   # the base's; the sweep's lr axis overrides it
    c = comparison_config(a["algo"], ALGOS)   # every arm's keys: a point switches the arm
    c = scratchpad_run(c, a)
    c.rl.ppo_epochs = a["epochs"]
    c.rl.minibatches = a["minibatches"]
    if not a["quick"]:
        c.ckpt_every = max(1, a["rl_steps"] // 3)
    return c


def get_sweep(arg: str = ""):
    """arms x learning rates x seeds: one vmapped group per algorithm (the learning rate is a
    dynamic hyperparameter, so every lr of an arm shares its program)."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    arms = chosen_algorithm_arms(a["algo"], ALGOS, a["arms"])
    return product(arms, lr_axis(a), seeds(a["seeds"], a["seed_start"]))

"""PPO (a learned critic, GAE) vs GRPO (group-relative advantages, no critic) on scratchpad
addition at the same budget of prompts and sampled responses (experiments/ppo_vs_grpo/).

    python -m rlpt.sweep --config=configs/ppo_vs_grpo.py --workdir=runs/ppo_vs_grpo
    python -m rlpt.train --config=configs/ppo_vs_grpo.py:algo=ppo,seed=1 --workdir=...

Both arms: the recipe of configs/dr_grpo_length.py (tiny model from scratch, 300 SFT steps on
1-3 digit worked solutions), then RL with 16 prompts x 8 samples per step at temperature 1, the
same steps and learning rate, no KL term (GRPO beta=0, PPO kl_coef=0), and the same update
schedule: configs/algos.py's PPO knobs, rl.ppo_epochs=2 x rl.minibatches=2 (4 optimizer updates
per batch of samples). The arms differ only in what the paper defaults of the two algorithms
differ in (the DEFAULTS of each rlpt/algorithms/<name>.py): PPO adds a value head on the policy trunk (`value_trunk_grad`,
vf_coef 0.5, value clip 0.2), GAE advantages with gamma = lambda = 1 whitened over the batch,
`token_mean` aggregation and the dual clip 3; GRPO uses (r - group mean) / group std per group of
8 and `seq_mean_token_mean`. PPO ignores the grouping of the 8 samples per prompt. The learning
rate (1e-4, both arms) was set by the rule in experiments/gspo_gmpo_stability/README.md from
GRPO-only pilots with these update knobs (a pilot seed collapsed at 3e-4).

Arguments (after ':'): algo (grpo | ppo, for get_config), seed, size, seeds (get_sweep: how
many, from 0), arms (get_sweep: '/'-separated), quick (1 = a seconds-long smoke version), and
rl_steps, sft_steps, batch, max_new, lr, epochs (rl.ppo_epochs), minibatches, evals
(held-out evaluations during RL besides the one after SFT).
"""
from configs.recipes import SCRATCHPAD_ARGS, comparison_config, scratchpad_run
from rlpt.config import parse_arg

ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=5, rl_steps=100, lr=1e-4, epochs=2,
            minibatches=2, arms="grpo/ppo")
ALGOS = ("grpo", "ppo")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = comparison_config(a["algo"], ALGOS)   # every arm's keys: a point switches the arm
    c.algo.kl_coef = 0.0
    c = scratchpad_run(c, a)
    c.rl.ppo_epochs = a["epochs"]
    c.rl.minibatches = a["minibatches"]
    return c


def get_sweep(arg: str = ""):
    """algo in {grpo, ppo} x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    return product(chosen_algorithm_arms(a["algo"], ALGOS, a["arms"]), seeds(a["seeds"]))

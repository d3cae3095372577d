"""GTPO and GRPO-S (arXiv 2508.04349) vs GRPO: entropy of the sampled tokens and pass@k, on
scratchpad addition (experiments/gtpo_entropy/).

    python -m rlpt.sweep --config=configs/gtpo_entropy.py --workdir=runs/gtpo_entropy

The recipe is configs.recipes.scratchpad_run (the one of configs/dr_grpo_length.py: tiny model from
scratch, 300 SFT steps, 200 RL steps of 16 prompts x 8 samples at temperature 1, lr 3e-4, no
KL term), with a held-out evaluation of 128 prompts x 32 samples (pass@1..32) after SFT, half-way
and at the end. The arms differ exactly in their paper defaults (the DEFAULTS of each rlpt/algorithms/<name>.py,
rlpt.sweep.points.algorithm_arms): GTPO and GRPO-S shape the advantage with the policy's entropy
(token-level for GTPO, sequence-level for GRPO-S) and use clip-higher (eps_high 0.28) and the
token-mean loss; GRPO has clip 0.2 and the per-response mean.

A second sweep reads the entropy-shaped advantages the other way: `norm=joint` z-scores each
group's token (GTPO) or sequence (GRPO-S) rewards jointly instead of over the successes and over
the failures separately (the default, `separate`, the spec's reading), which keeps the
success/failure contrast in the advantage:

    python -m rlpt.sweep --config=configs/gtpo_entropy.py:arms=gtpo/grpo_s,norm=joint \
        --workdir=runs/gtpo_entropy_joint

Arguments (after ':'): algo (for get_config), seeds (get_sweep: 0 .. seeds-1), arms
('/'-separated), n_samples (evaluation samples per prompt), norm (entropy_shaping_norm:
separate | joint | none), and SCRATCHPAD_ARGS (seed, size,
quick, rl_steps, sft_steps, batch, max_new, lr, max_digits, hard_max_digits, evals).
"""
from configs.recipes import SCRATCHPAD_ARGS, comparison_config, scratchpad_run
from rlpt.config import parse_arg

ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=3, arms="grpo/gtpo/grpo_s", n_samples=32,
            norm="separate")
ALGOS = ("grpo", "gtpo", "grpo_s")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = comparison_config(a["algo"], ALGOS)   # every arm's keys: a point switches the arm
    c.algo.entropy_shaping_norm = a["norm"]   # GTPO / GRPO-S only (rlpt.advantages)
    c = scratchpad_run(c, a)
    c.eval.n_samples = 4 if a["quick"] else a["n_samples"]
    c.eval.ks = (1, 2, 4) if a["quick"] else (1, 4, 8, 16, 32)
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    return product(chosen_algorithm_arms(a["algo"], ALGOS, a["arms"]), seeds(a["seeds"]))

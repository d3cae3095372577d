"""Dr. GRPO (arXiv 2503.20783) vs GRPO on scratchpad addition: response length of correct vs
incorrect responses over training (experiments/dr_grpo_length/).

    python -m rlpt.sweep --config=configs/dr_grpo_length.py --workdir=runs/dr_grpo_length
    python -m rlpt.train --config=configs/dr_grpo_length.py:algo=dr_grpo,seed=1 --workdir=...

Both arms share everything but the two terms the paper removes: GRPO divides each response's
token-loss sum by its own length (`loss_agg=seq_mean_token_mean`) and the group-centred reward
by the group's std (`advantage=grpo`); Dr. GRPO divides by a constant (max new tokens,
`seq_mean_token_sum_norm`) and only centres (`advantage=dr_grpo`). Same model, SFT warm-up,
learning rate, steps, batch, samples, temperature; no KL term in either arm (beta=0; GRPO's
default 0.04 is switched off so the KL is not a third difference).

Arguments (after ':'): algo (grpo | dr_grpo, for get_config), seed, size, seeds (get_sweep:
how many, from 0), arms (get_sweep: '/'-separated, for pilots), quick (1 = a seconds-long smoke
version), and the sizes rl_steps, sft_steps, batch (prompts per RL step), max_digits and
hard_max_digits (the task's knobs), max_new (new-token budget), lr (RL learning rate), lrs
(get_sweep: '/'-separated rates, every arm at each: experiments/lr_grid.py) and val_prompts
(validation prompts, rlpt.evaluation.validation).
"""
from configs.recipes import SCRATCHPAD_ARGS, lr_axis, scratchpad_run
from rlpt.config import base_config, parse_arg

ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=5, arms="grpo/dr_grpo")

# The two arms: exactly the keys where default_algo("grpo") and default_algo("dr_grpo") differ
# (besides beta, 0 in both (scratchpad_run), and group_size, which follows num_samples).
ARMS = {
    "grpo": {"config.algo.name": "grpo", "config.algo.advantage": "grpo",
             "config.algo.loss_agg": "seq_mean_token_mean"},
    "dr_grpo": {"config.algo.name": "dr_grpo", "config.algo.advantage": "dr_grpo",
                "config.algo.loss_agg": "seq_mean_token_sum_norm"},
}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    return scratchpad_run(base_config(a["algo"]), a)


def get_sweep(arg: str = ""):
    """algo in {grpo, dr_grpo} x seeds 0..seeds-1: two vmapped groups (one per algorithm)."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([ARMS[x] for x in a["arms"].split("/") if x], lr_axis(a), seeds(a["seeds"]))

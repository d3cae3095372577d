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
hard_max_digits (the task's knobs), max_new (new-token budget), lr (RL learning rate).
"""
from rlpt.config import base_config, parse_arg

ARGS = dict(algo="grpo", seed=0, size="tiny", seeds=5, quick=0, rl_steps=200, sft_steps=300,
            batch=16, max_new=48, lr=3e-4, max_digits=3, hard_max_digits=0,
            arms="grpo/dr_grpo")

# The two arms: exactly the keys where default_algo("grpo") and default_algo("dr_grpo") differ
# (besides beta, set to 0 for both below, and group_size, which follows num_samples).
ARMS = {
    "grpo": {"config.algo.name": "grpo", "config.algo.advantage": "grpo",
             "config.algo.loss_agg": "seq_mean_token_mean"},
    "dr_grpo": {"config.algo.name": "dr_grpo", "config.algo.advantage": "dr_grpo",
                "config.algo.loss_agg": "seq_mean_token_sum_norm"},
}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = base_config(a["algo"])
    c.algo.beta = 0.0
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "scratchpad_addition"
    c.task.kwargs = dict(min_digits=1, max_digits=a["max_digits"])
    if a["hard_max_digits"]:  # the hard split (rlpt.tasks.scratchpad): no SFT data on hard rows
        c.task.kwargs.hard_max_digits = a["hard_max_digits"]
    c.sampling.max_new_tokens = a["max_new"]   # worked solutions need <= 10 * max_digits + 2
    c.sampling.num_samples = 8
    c.sampling.temperature = 1.0
    c.rl.steps = a["rl_steps"]
    c.rl.batch_size = a["batch"]
    c.optim.lr = a["lr"]
    c.sft.steps = a["sft_steps"]
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = max(1, a["rl_steps"] // 2)   # after SFT, half-way, at the end
    c.eval.n_prompts = 128
    c.eval.n_samples = 8
    c.log_every = 5
    c.ckpt_every = max(1, a["rl_steps"] // 4)
    c.wandb.mode = "disabled"
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 16
        c.log_every = c.ckpt_every = 2
    return c


def get_sweep(arg: str = ""):
    """algo in {grpo, dr_grpo} x seeds 0..seeds-1: two vmapped groups (one per algorithm)."""
    from rlpt.sweep_points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([ARMS[x] for x in a["arms"].split("/") if x], seeds(a["seeds"]))

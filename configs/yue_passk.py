"""Yue et al. (arXiv 2504.13837): does RL (GRPO) raise pass@k only at small k, with the SFT model
catching up at large k? pass@k for k = 1, 2, 4, ..., 256 before and after RL on scratchpad
addition (experiments/yue_passk/).

    python -m rlpt.sweep --config=configs/yue_passk.py --workdir=runs/yue_passk
    python -m rlpt.train --config=configs/yue_passk.py:seed=1 --workdir=...

The recipe is the GRPO arm of configs/dr_grpo_length.py (same model, SFT warm-up, learning rate,
steps, batch, samples, temperature, beta=0), so its SFT model is imperfect (held-out pass@1 about
0.47 there) and RL raises pass@1. Only the evaluation differs: `n_samples` (256) samples per
held-out prompt at temperature 1 and unbiased pass@k for every power of two up to n_samples,
after SFT, optionally at intermediate RL steps (`evals` > 1: evaluations at rl_steps / evals,
2 rl_steps / evals, ...), and after RL.

Arguments (after ':'): seed, size, seeds (get_sweep: how many, from 0), quick (1 = a
seconds-long smoke version), and the sizes rl_steps, sft_steps, batch (prompts per RL step),
max_new (new-token budget), lr (RL learning rate), lrs (get_sweep: '/'-separated rates,
experiments/lr_grid.py), val_prompts (validation prompts, rlpt.evaluation.validation),
max_digits and hard_max_digits (the task's knobs), n_prompts and n_samples (the held-out
evaluation), evals (evaluations during RL).

Memory: the sweep evaluates all seeds of a group in one program, n_prompts x n_samples sequences
per seed at once. One seed at 128 prompts x 256 samples peaked at 5.9 GB resident (measured),
so 5 seeds use 48 prompts (about 10 GB expected) on this shared 23 GB machine.
"""
from configs.recipes import SCRATCHPAD_ARGS, lr_axis, powers_of_two, scratchpad_run
from rlpt.config import base_config, parse_arg

ARGS = dict(SCRATCHPAD_ARGS, seeds=5, n_prompts=48, n_samples=256)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = scratchpad_run(base_config("grpo"), a)
    c.eval.n_prompts = a["n_prompts"]
    c.eval.n_samples = a["n_samples"]
    c.eval.ks = powers_of_two(a["n_samples"])
    c.eval.temperature = 1.0
    if a["quick"]:
        c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 16, 16, powers_of_two(16)
    return c


def get_sweep(arg: str = ""):
    """GRPO x seeds 0..seeds-1: one vmapped group."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product(lr_axis(a), seeds(a["seeds"]))

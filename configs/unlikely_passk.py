"""Rewarding the Unlikely (arXiv 2506.02355): does the unlikeliness reward raise pass@N at large
N over GRPO without hurting pass@1, and what do 2 PPO epochs instead of 1 do?
(experiments/unlikely_passk/)

    python -m rlpt.sweep --config=configs/unlikely_passk.py --workdir=runs/unlikely_passk

A 2 x 2 design on the recipe of configs.recipes.scratchpad_run (tiny model from scratch, 300 SFT
steps, 200 GRPO steps of 16 prompts x 8 samples at temperature 1, lr 3e-4, no KL term), with a
held-out evaluation of 128 prompts x 32 samples (pass@1..32) after SFT, half-way and at the end:
- reward: the task's 0/1 reward (`algo.shaping=()`) or the unlikeliness reward
  (`("unlikeliness",)`, rlpt/pieces/unlikeliness.py, objectives.md §2: within each group of 8,
  samples ranked by mean token log-prob, rank 0 = least likely, r *= 1 - 0.25 * rank / 8,
  then GRPO's z-score);
- updates per batch: `rl.ppo_epochs` 1 or 2 (the paper's recipe is the unlikeliness reward
  with 2 epochs; the second epoch is off-policy and clipped, eps 0.2).
Everything else is the same in the four arms (same SFT model per seed, learning rate, steps,
prompts and samples).

Arguments (after ':'): arm (grpo | unlikely, for get_config), epochs (for get_config), seeds
(get_sweep: 0 .. seeds-1), arms ('/'-separated of grpo, unlikely), epoch_list ('/'-separated),
n_samples (evaluation samples per prompt), beta_rank, and SCRATCHPAD_ARGS (seed, size, quick,
rl_steps, sft_steps, batch, max_new, lr, max_digits, hard_max_digits, evals,
lrs: get_sweep's '/'-separated rates, every arm at each, val_prompts: validation prompts;
experiments/lr_grid.py).
"""
from configs.recipes import SCRATCHPAD_ARGS, lr_axis, scratchpad_run
from rlpt.config import base_config, parse_arg

ARGS = dict(SCRATCHPAD_ARGS, arm="grpo", epochs=1, seeds=3, arms="grpo/unlikely",
            epoch_list="1/2", n_samples=32, beta_rank=0.25)
SHAPING = {"grpo": (), "unlikely": ("unlikeliness",)}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = scratchpad_run(base_config("grpo"), a)
    c.algo.group_size = -1               # follows sampling.num_samples (8)
    c.algo.shaping = SHAPING[a["arm"]]
    c.algo.beta_rank = a["beta_rank"]    # read only by the unlikeliness shaping
    c.rl.ppo_epochs = a["epochs"]
    c.eval.n_samples = 4 if a["quick"] else a["n_samples"]
    c.eval.ks = (1, 2, 4) if a["quick"] else (1, 2, 4, 8, 16, 32)
    return c


def get_sweep(arg: str = ""):
    """{grpo, unlikely} x {1, 2} epochs x seeds 0..seeds-1: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    arms = [{"config.algo.shaping": SHAPING[x], "config.rl.ppo_epochs": int(e)}
            for x in a["arms"].split("/") if x for e in str(a["epoch_list"]).split("/") if e]
    return product(arms, lr_axis(a), seeds(a["seeds"]))

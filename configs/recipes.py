"""Experiment recipes shared by the config files (not library configuration: rlpt.config holds
the defaults, parsing and validation):

    arithmetic_run     the 1-2 digit addition setup of configs/grpo_arith.py and configs/algos.py
    SCRATCHPAD_ARGS    the arguments of scratchpad_run, with their defaults
    lr_axis            the learning-rate axis of a grid sweep (SCRATCHPAD_ARGS' `lrs`)
    scratchpad_run     the scratchpad-addition recipe of the experiments' configs
    comparison_config  the base config of a sweep comparing algorithms (one arm per algorithm)
    lora_run           LoRA adapters in place of the full fine-tune (the LoRA learning-rate rule)
    powers_of_two      the ks of a pass@k curve: 1, 2, 4, ..., n

A config file imports them as `from configs.recipes import ...` (configs/ is a package; run from
the repository root, as every command in the README is).
"""
import ml_collections

from rlpt.config import base_config
from rlpt.sweep.points import first_then, union_algo


def arithmetic_run(c, a: dict, rl_steps: int, rl_batch_size: int, eval_every: int):
    """The 1-2 digit addition setup shared by configs/grpo_arith.py and configs/algos.py:
    SFT warm-up (500 x 64, lr 1e-3), then `rl_steps` RL steps of `rl_batch_size` prompts x 8
    samples (5 new tokens, lr 5e-4). `a` holds the parsed `seed`, `size` and `quick` arguments;
    quick=1 is a seconds-long smoke version."""
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=2)
    c.sampling.max_new_tokens = 5
    c.sampling.num_samples = 8
    c.rl.steps = rl_steps
    c.rl.batch_size = rl_batch_size
    c.optim.lr = 5e-4
    c.sft.steps = 500
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = eval_every
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 6, 10, 3, 32
        c.log_every = c.ckpt_every = 3
    return c


SCRATCHPAD_ARGS = dict(seed=0, size="tiny", quick=0, rl_steps=200, sft_steps=300, batch=16,
                       max_new=48, lr=3e-4, max_digits=3, hard_max_digits=0, evals=2,
                       val_prompts=0, lrs="")


def lr_axis(a: dict) -> list:
    """The sweep axis of the '/'-separated learning rates `a["lrs"]` (`[{}]`: no axis when
    empty), for a grid with every arm at each rate (experiments/lr_grid.py)."""
    from rlpt.sweep.points import axis
    lrs = [float(x) for x in str(a["lrs"]).split("/") if x]
    return axis("config.optim.lr", lrs) if lrs else [{}]


def scratchpad_run(c, a: dict):
    """The scratchpad-addition recipe shared by the experiments' configs (configs/dr_grpo_length.py,
    yue_passk.py, ppo_vs_grpo.py, gspo_gmpo_stability.py, gtpo_entropy.py): the `size` preset
    trained from scratch, SFT (`sft_steps` x 64 worked solutions of 1..`max_digits`-digit sums,
    lr 1e-3; a hard split up to `hard_max_digits` digits without SFT data when > 0), then
    `rl_steps` RL steps of `batch`
    prompts x 8 samples at temperature 1 with `max_new` new tokens and RL learning rate `lr`, no KL
    term (beta = 0); held-out evaluation of 128 prompts x 8 samples after SFT and every
    rl_steps // `evals` steps, and `val_prompts` validation prompts beside them when > 0
    (rlpt.evaluation.validation). `a` holds SCRATCHPAD_ARGS (parsed); quick=1 is a seconds-long
    smoke version."""
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
    c.eval.every = max(1, a["rl_steps"] // max(1, a["evals"]))
    c.eval.n_prompts = 128
    c.eval.n_samples = 8
    if a["val_prompts"]:
        c.eval.validation_prompts = a["val_prompts"]
    c.log_every = 5
    c.ckpt_every = max(1, a["rl_steps"] // 4)
    c.wandb.mode = "disabled"
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 16
        c.log_every = c.ckpt_every = 2
    return c


def comparison_config(first: str, algos) -> ml_collections.ConfigDict:
    """The base config of a sweep comparing `algos` (rlpt.sweep.points.algorithm_arms with the
    same order): base_config(first) whose `algo` is union_algo(first, then the others), and
    group_size following sampling.num_samples in every arm."""
    c = base_config(first)
    c.algo = union_algo(first_then(first, algos))
    c.algo.group_size = -1
    return c


def lora_run(c, rank: int):
    """LoRA adapters of rank `rank` on every projection in place of the full fine-tune: alpha =
    2 x rank and a learning rate 10x the config's, the usual LoRA rule (Schulman et al., "LoRA
    Without Regret", Thinking Machines 2025; not tuned here). Rank 0 leaves `c` as it is."""
    if rank:
        c.lora.rank, c.lora.alpha = rank, 2.0 * rank
        c.optim.lr = 10 * c.optim.lr


def powers_of_two(n: int):
    """(1, 2, 4, ..., n) for a power of two n; otherwise the powers below n, then n."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return tuple(ks + [n])

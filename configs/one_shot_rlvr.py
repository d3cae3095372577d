"""1-shot RLVR (arXiv 2504.20571): RL on one training example (the one whose training accuracy
varies most) against RL on the full training stream, on scratchpad addition
(experiments/one_shot_rlvr/).

    python scripts/one_shot_rank.py --config=configs/one_shot_rlvr.py:arm=one_shot \
        --pool_size=32 --steps=40 --out=runs/one_shot_rank.npz     # -> INDEX below
    python -m rlpt.sweep --config=configs/one_shot_rlvr.py --workdir=runs/one_shot_rlvr

Both arms use the paper's algorithm (`one_shot_rlvr`: GRPO with a k3 KL, beta 1e-3, an entropy
bonus 1e-3, token-mean loss, sampling temperature 0.6) on the recipe of rlpt.config.
scratchpad_run (tiny model from scratch, 300 SFT steps on 1-3 digit worked solutions, 200 RL
steps of 16 prompts x 8 samples, lr 3e-4). They differ only in the RL data (the `one_shot`
task, rlpt/tasks/one_shot.py):
- `full`: `task.kwargs.index=-1`, a fresh batch of 16 problems every step (3,200 problems);
- `one_shot`: `index=INDEX`, pool row INDEX repeated 16 times every step. INDEX is the example
  of the 32-problem pool (pool_seed 0) ranked first by scripts/one_shot_rank.py: the largest
  variance of its per-step accuracy over 40 RL steps on the whole pool from the seed-0 SFT
  model. It is selected once and used for every seed.
Held-out evaluation (128 problems, after SFT and every 100 steps) is the base task's.

Arguments (after ':'): arm (full | one_shot, for get_config), index (the 1-shot example),
pool_size, seeds (get_sweep: 0 .. seeds-1), arms ('/'-separated), and SCRATCHPAD_ARGS
(seed, size, quick, rl_steps, sft_steps, batch, max_new, lr, max_digits, hard_max_digits, evals).
"""
from configs.recipes import SCRATCHPAD_ARGS, scratchpad_run
from rlpt.config import base_config, parse_arg

INDEX = 29  # "307+146=": rank 0 of scripts/one_shot_rank.py (variance 0.146, mean acc 0.76)
ARGS = dict(SCRATCHPAD_ARGS, arm="full", index=INDEX, pool_size=32, seeds=5,
            arms="full/one_shot")


def _arms(a):
    return {"full": {"config.task.kwargs.index": -1},
            "one_shot": {"config.task.kwargs.index": a["index"]}}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = scratchpad_run(base_config("one_shot_rlvr"), a)
    c.algo.beta = 1e-3                  # the paper's KL (scratchpad_run switches it off)
    c.algo.group_size = -1              # follows sampling.num_samples (8)
    c.sampling.temperature = c.algo.temperature   # 0.6, the paper's
    c.task.name = "one_shot"
    c.task.kwargs = dict(base="scratchpad_addition", base_kwargs=dict(c.task.kwargs),
                         pool_seed=0, pool_size=a["pool_size"],
                         index=_arms(a)[a["arm"]]["config.task.kwargs.index"])
    return c


def get_sweep(arg: str = ""):
    """arm in {full, one_shot} x seeds 0..seeds-1: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([_arms(a)[x] for x in a["arms"].split("/") if x], seeds(a["seeds"]))

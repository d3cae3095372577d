"""Kimi k1.5 length penalty (arXiv 2501.12599) on GRPO: does the length reward shorten
responses at little accuracy cost? (experiments/kimi_length/)

    python -m rlpt.sweep --config=configs/kimi_length.py --workdir=runs/kimi_length
    python -m rlpt.train --config=configs/kimi_length.py:arm=grpo_len,seed=1 --workdir=...

The recipe is configs.recipes.scratchpad_run (tiny model from scratch, 300 SFT steps, 200 GRPO
steps of 16 prompts x 8 samples at temperature 1, lr 3e-4, no KL term). The two arms differ in
one thing: `grpo_len` adds the paper's length reward to the task reward before the group
advantage (`algo.shaping=("kimi_length_penalty",)`, rlpt/algorithms/kimi_k15.py, objectives.md §2:
lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len) within the group; lambda_i if correct,
min(0, lambda_i) if not; weight `length_penalty_weight` = 1). Everything else, including the
loss (GRPO's clipped surrogate with seq_mean_token_mean), is the same. The paper pairs the
length reward with its mirror-descent loss and warms it up; here it is tested alone, on GRPO,
from the first RL step; `algo=kimi_k15` runs both arms with the paper's own loss instead (its
online mirror descent, rlpt.losses.policy.kimi_k15_loss: a mean baseline, no division by the
group's std, tau 1), the same two arms:

    python -m rlpt.sweep --config=configs/kimi_length.py:algo=kimi_k15,seeds=3 \
        --workdir=runs/kimi_length_k15

The warm-up follow-up (the penalty switched on at RL step 100 of 200), from the same SFT models
as the sweep above, so that it pairs seed by seed with that sweep's arm without the penalty:

    python -m rlpt.sweep --config=configs/kimi_length.py:algo=kimi_k15,seeds=3,arms=grpo_len,start=100 \
        --workdir=runs/kimi_length_k15_warmup --sft_from=runs/kimi_length_k15

Arguments (after ':'): arm (grpo | grpo_len: without | with the length reward, for get_config),
algo (grpo | kimi_k15: the loss of both arms), seeds (get_sweep: 0 .. seeds-1),
arms ('/'-separated), weight (length_penalty_weight), start (length_penalty_start: the paper's
warm-up, the penalty is off for RL steps 0 .. start-1), and SCRATCHPAD_ARGS (seed, size, quick,
rl_steps, sft_steps, batch, max_new, lr, max_digits, hard_max_digits, evals).
"""
from configs.recipes import SCRATCHPAD_ARGS, scratchpad_run
from rlpt.config import base_config, parse_arg

ARGS = dict(SCRATCHPAD_ARGS, arm="grpo", seeds=5, arms="grpo/grpo_len", weight=1.0, start=0,
            algo="grpo")
ARMS = {"grpo": {"config.algo.shaping": ()},
        "grpo_len": {"config.algo.shaping": ("kimi_length_penalty",)}}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = scratchpad_run(base_config(a["algo"]), a)
    c.algo.group_size = -1                       # follows sampling.num_samples (8)
    c.algo.length_penalty_weight = a["weight"]   # read only by the kimi_length_penalty shaping
    c.algo.length_penalty_start = a["start"]     # its warm-up: off for RL steps < start
    c.algo.shaping = ARMS[a["arm"]]["config.algo.shaping"]
    return c


def get_sweep(arg: str = ""):
    """arm in {grpo, grpo_len} x seeds 0..seeds-1: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([ARMS[x] for x in a["arms"].split("/") if x], seeds(a["seeds"]))

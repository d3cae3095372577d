"""Tool use: SFT warm-up on calculator demos (half call, half answer directly), then GRPO with
the calculator in the rollout (rlpt.envs.tool_rollout.tool_rollout), on 3-digit x 2-digit products.

    python -m rlpt.train --config=configs/tool_calc.py:size=tiny,seed=0 --workdir=runs/tool_calc

`rollout.kind="tool"` makes the trainer use the tool rollout, the tool SFT step (loss on model tokens
only) and the tool evaluation (greedy accuracy, pass@k, call rates).

Arguments: size (a model preset), seed, quick (1 = a seconds-long smoke version),
call_fraction (share of SFT demos that call the tool), artist (1 = ARTIST-style reward terms:
answer 2 + format 1 + tool-success fraction, arXiv 2505.01441; 0 = correctness only).
"""
import ml_collections

import rlpt.tasks.tool_task  # noqa: F401  (registers tool_multiplication)
from rlpt.config import base_config, parse_arg


def get_config(arg: str = ""):
    a = parse_arg(arg, size="tiny", seed=0, quick=0, call_fraction=0.5, artist=0)
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "tool_multiplication"
    weights = (dict(answer_reward=2.0, format_reward=1.0, tool_reward=1.0) if a["artist"]
               else dict(answer_reward=1.0, format_reward=0.0, tool_reward=0.0))
    c.task.kwargs = ml_collections.ConfigDict(dict(
        min_digits_a=3, max_digits_a=3, min_digits_b=2, max_digits_b=2,
        call_fraction=a["call_fraction"], **weights))
    c.rollout.kind = "tool"
    c.tool = ml_collections.ConfigDict(dict(max_calls=2, max_call_len=24))
    c.sampling.max_new_tokens = 24   # `[123*45]` 8 + `<5535>` <= 7 + answer <= 5 + eos
    c.sampling.num_samples = 8
    c.algo.beta = 0.0
    c.rl.steps = 60
    c.rl.batch_size = 16
    c.optim.lr = 5e-4
    c.sft.steps = 300
    c.sft.batch_size = 64
    c.sft.optim.lr = 2e-3
    c.eval.n_prompts = 256
    c.eval.n_samples = 4
    c.eval.ks = (1, 4)
    c.eval.every = 20
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.n_prompts, c.eval.every = 2, 5, 16, 2
        c.log_every = c.ckpt_every = 2
    return c

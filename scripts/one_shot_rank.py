"""1-shot RLVR example selection (arXiv:2504.20571): train on a pool, rank by accuracy variance.

    python scripts/one_shot_rank.py --config=configs/algos.py:algo=one_shot_rlvr --pool_size=64 \
        --steps=100 --out=runs/one_shot_rank.npz

The config's SFT warm-up runs first (on the base task), then the config's RL algorithm trains
on the pool for `--steps` epochs, each one step with the whole pool as the batch, or with
`--prompts_per_step c` pool_size / c steps on slices of c examples (a pretrained model's pool
rollout can exceed memory: SmolLM2 with 16 questions x 8 samples in one step asked for a 29.6
GB allocation), recording each example's accuracy over its G samples per epoch (history
[pool_size, steps]); examples are ranked by the variance of that history
(rlpt.algorithms.one_shot_rlvr.rank_examples_by_accuracy_variance), largest first. A config with
the reward on the host (`reward.kind="split"`, a pretrained model's verifier) trains with the
split step. Put the top index into
`task.kwargs.index` of the one_shot config.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from rlpt.algorithms.one_shot_rlvr import (accuracy_history,  # noqa: E402
                                           rank_examples_by_accuracy_variance)
from rlpt.build import build_model, build_rl, build_sft, build_task, host_reward_fn  # noqa
from rlpt.config import load_config, validate  # noqa: E402
from rlpt.step import make_fused_step, make_split_step  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/algos.py:algo=one_shot_rlvr")
    p.add_argument("--pool_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--prompts_per_step", type=int, default=0,
                   help="train each epoch on slices of this many pool examples (0: the whole "
                        "pool in one step); must divide --pool_size")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    cfg = load_config(a.config)
    if cfg.task.name != "one_shot":
        raise SystemExit(f"--config must use task one_shot (got {cfg.task.name!r})")
    hist, order, task, pool = rank(cfg, a.pool_size, a.steps, a.prompts_per_step)
    print(f"{'rank':>4} {'index':>5} {'var':>7} {'mean acc':>8}  prompt")
    for r, i in enumerate(order[:a.top]):
        print(f"{r:>4} {i:>5} {hist[i].var():7.4f} {hist[i].mean():8.3f}  "
              f"{prompt_text(task, pool, i)}")
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        np.savez(a.out, history=hist, order=order)
    return hist, order


def prompt_text(task, pool, i: int) -> str:
    """Pool row i's prompt as text: the task's decode_prompt, else its tokenizer's decoding of
    the real (masked) tokens (a pretrained model's chat-template prompt)."""
    if hasattr(task, "decode_prompt"):
        return task.decode_prompt(pool["prompt"][i])
    return task.tokenizer.decode(pool["prompt"][i][pool["prompt_mask"][i] > 0],
                                 stop_at_eos=False).replace("\n", " | ")


def rank(cfg, pool_size: int, steps: int, prompts_per_step: int = 0):
    """The warm-up, then `steps` epochs of RL on the pool, each one step on the whole pool or
    pool_size / prompts_per_step steps on slices of it (the fused step, or with a host reward
    `reward.kind="split"` the split one) -> (history [pool, steps], order, task, pool)."""
    cfg = cfg.copy_and_resolve_references()
    cfg.task.kwargs.pool_size = pool_size
    cfg.task.kwargs.index = 0   # any example of the pool: the pool is what every step trains on
    cfg.rl.batch_size = prompts_per_step or pool_size
    cfg = validate(cfg)
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    if cfg.sft.steps:
        step, st, sft_hp, make_batch = build_sft(cfg, model_cfg, params, task)
        sft_step = jax.jit(step, donate_argnums=(0,))
        for s in range(cfg.sft.steps):
            st, _ = sft_step(st, make_batch(s), sft_hp)
        params = st.params
    spec, state, hp, _ = build_rl(cfg, model_cfg, params, task, per_prompt_metrics=True)
    step = (make_split_step(spec, host_reward_fn(task)) if cfg.reward.kind == "split"
            else make_fused_step(spec))
    pool = task.pool()
    start = time.time()

    def progress(epoch, accs):
        print(f"epoch {epoch + 1}/{steps}: pool accuracy {accs.mean():.3f} "
              f"({time.time() - start:.0f} s)", flush=True)

    _, hist = accuracy_history(step, state, pool, hp, steps, prompts_per_step, progress)
    return hist, rank_examples_by_accuracy_variance(hist), task, pool


if __name__ == "__main__":
    main()

"""ReLIFT (arXiv:2506.07527) [code]: a buffer of all-failed prompts with their gold solutions.

The buffer lives in `TrainState.algo_state["relift"]` with a static shape: capacity
`S + B` rows (S = `sft_buffer_size`, B prompts per step) of `prompt`, `prompt_mask`, `solution`,
`solution_mask`, and a fill `count`. After each RL update the prompts whose G samples all failed
(task reward <= `success_threshold`) are appended; when `count >= S` the step runs one SFT
update on the first S rows (`relift_sft`: token-mean NLL - `sft_entropy_coef` * entropy, at
temperature 1) under `lax.cond`, and shifts the remaining rows to the front. Because
`count < S` before a push, nothing is ever dropped.
"""
import jax.numpy as jnp

KEYS = ("prompt", "prompt_mask", "solution", "solution_mask")


def init_buffer(size: int, batch) -> dict:
    """An empty buffer shaped after `batch` (one step's task batch: B rows)."""
    B = batch["prompt"].shape[0]
    buf = {k: jnp.zeros((size + B,) + tuple(batch[k].shape[1:]), jnp.int32) for k in KEYS}
    buf["count"] = jnp.zeros((), jnp.int32)
    return buf


def push(buf, failed_B, batch):
    """Appends the rows of `batch` where `failed_B`; returns the new buffer."""
    cap = buf["prompt"].shape[0]
    failed = failed_B.astype(jnp.int32)
    pos = jnp.where(failed_B, buf["count"] + jnp.cumsum(failed) - 1, cap)  # cap: dropped
    new = {k: buf[k].at[pos].set(jnp.asarray(batch[k], jnp.int32), mode="drop") for k in KEYS}
    new["count"] = buf["count"] + jnp.sum(failed)
    return new


def take(buf, size: int):
    """The first `size` rows as an SFT batch."""
    return {k: buf[k][:size] for k in KEYS}


def pop(buf, size: int):
    """Drops the first `size` rows (shifts the rest to the front)."""
    new = {k: jnp.roll(buf[k], -size, axis=0) for k in KEYS}
    new["count"] = buf["count"] - size
    return new

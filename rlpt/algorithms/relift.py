"""ReLIFT (arXiv:2506.07527) [code]: a buffer of all-failed prompts with their gold solutions.

The buffer lives in `TrainState.algo_state["relift"]` with a static shape: capacity
`S + B` rows (S = `sft_buffer_size`, B prompts per step) of `prompt`, `prompt_mask`, `solution`,
`solution_mask`, and a fill `count`. After each RL update the prompts whose G samples all failed
(task reward <= `success_threshold`) are appended; when `count >= S` the step runs one SFT
update on the first S rows (`relift_sft`: token-mean NLL - `sft_entropy_coef` * entropy, at
temperature 1) under `lax.cond`, and shifts the remaining rows to the front. Because
`count < S` before a push, nothing is ever dropped.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm, correct_of
from rlpt.algorithms.relift_sft import relift_sft_loss
from rlpt.errors import UserError
from rlpt.logprobs import rows_logprobs
from rlpt.losses.policy import clip_objective, resolve
from rlpt.optim import apply_update
from rlpt.state import model_params

KEYS = ("prompt", "prompt_mask", "solution", "solution_mask")


DEFAULTS = dict(advantage="dr_grpo", loss_agg="seq_mean_token_sum_norm", sft_entropy_coef=1e-3,
                sft_buffer_size=128)
DYNAMIC = frozenset({"sft_entropy_coef"})


@registry.register("loss", "relift")
def relift_loss(batch, cfg):
    """ReLIFT (arXiv:2506.07527) [code], RL side: Dr.GRPO-style clipped surrogate (advantage
    "dr_grpo", seq_mean_token_sum_norm, no KL). The interleaved SFT update on the buffer of
    all-failed prompts is the separate loss "relift_sft"; the buffer itself lives in the trainer."""
    return clip_objective(batch, resolve(cfg, "relift", DEFAULTS))



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


def init(spec, params, example_batch, seed):
    if example_batch is None:
        raise ValueError("ReLIFT: init needs example_batch (one step's task batch) to shape "
                         "its buffer")
    return params, {"relift": init_buffer(int(spec.algo.get("sft_buffer_size", 128)),
                                          example_batch)}


def after_update(spec, params, opt_state, algo_state, batch, raw_N, c, hp, frozen=None):
    """Push the all-failed prompts; one SFT update on the buffer when it holds S rows."""
    G, size = spec.G, int(c.get("sft_buffer_size", 128))
    failed_B = ~jnp.any(correct_of(raw_N, c).reshape(-1, G), axis=1)
    buf = push(algo_state["relift"], failed_B, batch)
    sft_cfg = {"entropy_coef": c.get("sft_entropy_coef", 1e-3), "loss_agg": "token_mean"}

    def do_sft(operand):
        params, opt_state, buf = operand
        b = take(buf, size)
        rows = {"tokens": jnp.concatenate([b["prompt"], b["solution"]], axis=1),
                "valid": jnp.concatenate([b["prompt_mask"], b["solution_mask"]],
                                         axis=1).astype(bool),
                "mask": b["solution_mask"].astype(jnp.float32)}

        def loss_of(p):
            logp, ent = rows_logprobs(spec.model_cfg, model_params(p, frozen), rows, 1.0,
                                      with_entropy=True)
            return relift_sft_loss({"logp": logp, "mask": rows["mask"], "entropy": ent}, sft_cfg)

        (loss, _), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        params, opt_state, _ = apply_update(spec.optimizer, loss, grads, opt_state, params,
                                            hp["optim"])
        return params, opt_state, pop(buf, size), loss

    def skip(operand):
        params, opt_state, buf = operand
        return params, opt_state, buf, jnp.zeros((), jnp.float32)

    applied = buf["count"] >= size
    params, opt_state, buf, loss = jax.lax.cond(applied, do_sft, skip, (params, opt_state, buf))
    return params, opt_state, dict(algo_state, relift=buf), {
        "relift_failed_prompts": jnp.sum(failed_B).astype(jnp.float32),
        "relift_sft_applied": applied.astype(jnp.float32), "relift_sft_loss": loss,
        "relift_buffer_count": buf["count"].astype(jnp.float32)}


def validate(cfg):
    if int(cfg.algo.get("sft_buffer_size", 128)) < 1:
        raise UserError(f"config algo.sft_buffer_size: {cfg.algo.sft_buffer_size} must be >= 1")


ALGORITHM = registry.register("algorithm", "relift")(Algorithm(
    "relift", relift_loss, defaults=DEFAULTS, dynamic=DYNAMIC, validate=validate, init=init,
    after_update=after_update))

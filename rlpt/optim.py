"""AdamW with warm-up / cosine schedule and global-norm clipping, its hyperparameters as data.

The optimizer is `optax.inject_hyperparams` over `clip_by_global_norm -> adamw`, so every
numeric hyperparameter lives in the optimizer state, and `update(...)` writes them from the
dynamic pytree `hp_optim` before each update: a new learning rate (or warm-up length, decay
span, betas, weight decay, clip norm) is a new argument of the compiled step, never a recompile,
and a batch of them can be vmapped (a sweep). Static (`OptimSpec`): the schedule's kind and
whether clipping exists.

Schedule: linear warm-up reaching `lr` after `warmup_steps` updates (the first update already
uses lr / warmup_steps), then constant, or cosine decay to `lr * final_lr_fraction` at
`decay_steps`.

`apply_update` is the one place an update reaches the parameters (RL, SFT, preference and
reward-model steps): an update whose loss, gradient norm or hyperparameters are not finite is
skipped (parameters and optimizer state kept) and counted, so a diverging run never carries a
non-finite state; rlpt.loop stops the run after `nonfinite.stop_after` such steps in a row.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

DYNAMIC_FIELDS = ("lr", "warmup_steps", "decay_steps", "final_lr_fraction", "b1", "b2", "eps",
                  "weight_decay", "max_grad_norm")
SCHEDULES = ("constant", "cosine")


class OptimSpec(NamedTuple):
    schedule: str   # constant | cosine
    clip: bool      # global-norm clipping exists (max_grad_norm > 0 in the config)


def optim_spec(o) -> OptimSpec:
    if o.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule={o.schedule!r}; expected 'constant' or 'cosine'")
    return OptimSpec(o.schedule, bool(o.max_grad_norm))


def optim_hparams(o) -> dict:
    """The dynamic part of an optimizer config as float32 scalars."""
    return {k: jnp.asarray(float(o[k]), jnp.float32) for k in DYNAMIC_FIELDS}


def learning_rate(spec: OptimSpec, t, hp):
    """The learning rate of update number `t` (0-based) under `hp` (module doc)."""
    # x * (1 / d), not x / d: XLA rewrites a division by a compile-time constant that way, so
    # the value is bit-for-bit the one of a schedule with constant hyperparameters.
    warm = jnp.maximum(hp["warmup_steps"], 1.0)
    lr = hp["lr"] * jnp.minimum(1.0, (t + 1.0) * (1.0 / warm))
    if spec.schedule == "cosine":
        span = jnp.maximum(hp["decay_steps"] - warm, 1.0)
        f = hp["final_lr_fraction"]
        frac = jnp.clip((t - warm) * (1.0 / span), 0.0, 1.0)
        lr = lr * (f + (1 - f) * 0.5 * (1 + jnp.cos(jnp.pi * frac)))
    return lr


class Optimizer(NamedTuple):
    """`init(params) -> opt_state`; `update(grads, opt_state, params, hp_optim) -> (updates,
    opt_state)` with the schedule evaluated at the state's update count."""
    spec: OptimSpec
    init: callable
    update: callable


def make_optimizer(o) -> Optimizer:
    spec = optim_spec(o)

    def chain(learning_rate, b1, b2, eps, weight_decay, max_grad_norm):
        parts = [optax.clip_by_global_norm(max_grad_norm)] if spec.clip else []
        parts.append(optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
        return optax.chain(*parts)

    hp0 = optim_hparams(o)
    inner = optax.inject_hyperparams(chain)(
        learning_rate=learning_rate(spec, 0, hp0), b1=hp0["b1"], b2=hp0["b2"], eps=hp0["eps"],
        weight_decay=hp0["weight_decay"], max_grad_norm=hp0["max_grad_norm"])

    def update(grads, opt_state, params, hp):
        values = dict(learning_rate=learning_rate(spec, opt_state.count, hp), b1=hp["b1"],
                      b2=hp["b2"], eps=hp["eps"], weight_decay=hp["weight_decay"],
                      max_grad_norm=hp["max_grad_norm"])
        hyper = {k: jnp.asarray(v, opt_state.hyperparams[k].dtype) for k, v in values.items()}
        return inner.update(grads, opt_state._replace(hyperparams=hyper), params)

    return Optimizer(spec, inner.init, update)


def apply_update(optimizer: Optimizer, loss, grads, opt_state, params, hp):
    """`(params, opt_state, metrics)` after one guarded update (module doc). metrics:
    `grad_norm`, and `nonfinite_updates` (1.0 when this update was skipped, else 0.0).

    The check is on scalars (the loss, the gradient norm, the hyperparameters), and the update
    runs under `lax.cond`: a finite step costs what the plain optax update costs, with no extra
    pass over the parameters and moments (under `vmap` the cond becomes a select)."""
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    for v in jax.tree_util.tree_leaves(hp):
        finite = finite & jnp.all(jnp.isfinite(v))

    def update(operands):
        grads, opt_state, params = operands
        updates, new_opt_state = optimizer.update(grads, opt_state, params, hp)
        return optax.apply_updates(params, updates), new_opt_state

    new_params, new_opt_state = jax.lax.cond(finite, update, lambda o: (o[2], o[1]),
                                             (grads, opt_state, params))
    return new_params, new_opt_state, {
        "grad_norm": grad_norm, "nonfinite_updates": 1.0 - finite.astype(jnp.float32)}

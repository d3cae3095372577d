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

Master weights (`optim.master_dtype`, static): "float32" (default) keeps the trained parameters
and the AdamW moments in float32 whatever the compute dtype (`model.dtype`). "bfloat16" stores
the parameters in bfloat16 (half the memory of the master copy) and needs
`optim.stochastic_rounding=True` (rlpt.config.validate_optim): AdamW's step is about `lr` in size,
and written back to a bfloat16 weight with round-to-nearest it is lost whenever it is below half
a bfloat16 ulp (2^-8 of the weight), so training would silently stall. With it, the gradients
and the weights are cast to float32, the update (clipping, moments, weight decay) is computed in
float32, the moments stay float32, and `w + u` is written back to bfloat16 with stochastic
rounding (`stochastic_round`: up with probability equal to the remainder's fraction of an ulp,
so E[new w] = w + u; Gupta et al. arXiv:1502.02551, Zamirai et al. arXiv:2010.06192). The random
bits come from `fold_in(SR_KEY, count)`, the optimizer's own update count, then one fold per
parameter leaf: deterministic, so a resumed run rounds exactly as an uninterrupted one.
`Optimizer.master(params)` casts initial parameters to the master dtype (rlpt.state.new_state;
float32 leaves are kept as they are, and a bfloat16 SFT phase's weights become float32 masters
again in an RL phase with master_dtype="float32").
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

DYNAMIC_FIELDS = ("lr", "warmup_steps", "decay_steps", "final_lr_fraction", "b1", "b2", "eps",
                  "weight_decay", "max_grad_norm")
SCHEDULES = ("constant", "cosine")
MASTER_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
SR_KEY = 0x5EED   # the base of the stochastic-rounding keys (module doc)


class OptimSpec(NamedTuple):
    schedule: str   # constant | cosine
    clip: bool      # global-norm clipping exists (max_grad_norm > 0 in the config)
    master_dtype: str = "float32"   # the dtype of the trained parameters (module doc)


def master_dtype_error(key: str = "optim") -> str:
    """Why bfloat16 master weights need stochastic rounding (the message of the refusal)."""
    return (f"'bfloat16' needs {key}.stochastic_rounding=True: an AdamW update (about lr in size) "
            "written back to a bfloat16 weight with round-to-nearest is dropped whenever it is "
            "below half a bfloat16 ulp (2^-8 of the weight's magnitude), so most weights would "
            f"silently stop training; set {key}.stochastic_rounding=True (the update is computed "
            f"in float32 and rounded stochastically, unbiased) or keep {key}.master_dtype="
            "'float32'")


def optim_spec(o) -> OptimSpec:
    if o.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule={o.schedule!r}; expected 'constant' or 'cosine'")
    master = o.get("master_dtype", "float32")   # configs saved before the field read float32
    if master not in MASTER_DTYPES:
        raise ValueError(f"optim.master_dtype={master!r}; expected one of {list(MASTER_DTYPES)}")
    if master == "bfloat16" and not o.get("stochastic_rounding", False):
        raise ValueError("optim.master_dtype=" + master_dtype_error())
    return OptimSpec(o.schedule, bool(o.max_grad_norm), master)


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


def _apply_plain(params, updates, opt_state):
    return optax.apply_updates(params, updates)


def _cast_floats(tree, dtype):
    """Every floating leaf of another dtype cast to `dtype`; the others are the same objects."""
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype
        else x, tree)


def _to_float32(tree):
    """Every floating leaf in float32 (float32 leaves are the same objects)."""
    return _cast_floats(tree, jnp.float32)


def stochastic_round(x, key, dtype=jnp.bfloat16):
    """`x` rounded to bfloat16 stochastically: to the next bfloat16 value away from zero with
    probability (the dropped low 16 bits of x's float32 pattern) / 2^16, else toward zero, so
    `E[stochastic_round(x)] = x` (module doc). A uniform 16-bit integer is added to the float32
    bit pattern (the carry, if any, moves the kept bits one ulp up in magnitude) and the low 16
    bits are cut. Non-finite values pass through."""
    if dtype != jnp.bfloat16:
        raise ValueError(f"stochastic rounding to {dtype} is not implemented (bfloat16 only)")
    x = jnp.asarray(x, jnp.float32)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = jax.random.bits(key, x.shape, jnp.uint32) >> 16
    rounded = jax.lax.bitcast_convert_type((bits + noise) & jnp.uint32(0xFFFF0000), jnp.float32)
    return jnp.where(jnp.isfinite(x), rounded, x).astype(dtype)


def stochastic_round_tree(tree, key, dtype=jnp.bfloat16):
    """`stochastic_round` of every leaf, leaf i with `fold_in(key, i)`."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(treedef, [
        stochastic_round(x, jax.random.fold_in(key, i), dtype) for i, x in enumerate(leaves)])


class Optimizer(NamedTuple):
    """`init(params) -> opt_state`; `update(grads, opt_state, params, hp_optim) -> (updates,
    opt_state)` with the schedule evaluated at the state's update count; `apply(params, updates,
    opt_state) -> params` writes an update (`opt_state` the state it was computed from: its
    count keys the stochastic rounding); `master(params)` casts parameters to the master dtype."""
    spec: OptimSpec
    init: callable
    update: callable
    apply: callable = _apply_plain
    master: callable = _to_float32


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

    if spec.master_dtype == "float32":
        return Optimizer(spec, inner.init, update)
    low = MASTER_DTYPES[spec.master_dtype]
    f32 = _to_float32

    def apply(params, updates, opt_state):
        key = jax.random.fold_in(jax.random.PRNGKey(SR_KEY), opt_state.count)
        return stochastic_round_tree(optax.apply_updates(f32(params), updates), key, low)

    return Optimizer(spec, lambda params: inner.init(f32(params)),
                     lambda grads, opt_state, params, hp: update(f32(grads), opt_state,
                                                                 f32(params), hp),
                     apply, lambda params: _cast_floats(params, low))


def apply_update(optimizer: Optimizer, loss, grads, opt_state, params, hp):
    """`(params, opt_state, metrics)` after one guarded update (module doc). metrics:
    `grad_norm`, and `nonfinite_updates` (1.0 when this update was skipped, else 0.0).

    The check is on scalars (the loss, the gradient norm, the hyperparameters), and the update
    runs under `lax.cond`: a finite step costs what the plain optax update costs, with no extra
    pass over the parameters and moments (under `vmap` the cond becomes a select)."""
    grad_norm = optax.tree.norm(_to_float32(grads))   # bf16 master: f32 norm
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    for v in jax.tree_util.tree_leaves(hp):
        finite = finite & jnp.all(jnp.isfinite(v))

    def update(operands):
        grads, opt_state, params = operands
        updates, new_opt_state = optimizer.update(grads, opt_state, params, hp)
        return optimizer.apply(params, updates, opt_state), new_opt_state

    new_params, new_opt_state = jax.lax.cond(finite, update, lambda o: (o[2], o[1]),
                                             (grads, opt_state, params))
    return new_params, new_opt_state, {
        "grad_norm": grad_norm, "nonfinite_updates": 1.0 - finite.astype(jnp.float32)}

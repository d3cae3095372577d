"""LoRA (Hu et al., arXiv 2106.09685) as plain pytrees: no wrapper modules, no framework magic.

A projection `y = x W (+ b)` of the model (rlpt.models.transformer.Linear: q, k, v, o, gate, up,
down) gains `(x A) B * scale` when its parameter dict also holds `lora_a` A [in, r] and
`lora_b` B [r, out]; `scale = alpha / r` is `ModelConfig.lora_scale`. Everything here is a
function of nested dicts:

    adapters = init_adapters(base, rank, targets, rng)  # {"layer_0": {"attn": {"q": {"lora_a",
                                                        #  "lora_b"}}}, ...}: A random, B zero
    params = attach(base, adapters)     # the base's dicts with the adapters overlaid (no copy of
                                        # a base array): what the model is applied to
    plain = merge(base, adapters, s)    # kernel + A @ B * s, adapters gone (export, next phase)

With LoRA on (`cfg.lora.rank > 0`) a train state's `params` are the adapters (plus any other
trainable subtree, e.g. PPO's `value_head`, which `attach` carries over) and `frozen["base"]` the
base (`base_weights`: matrices in the compute dtype); rlpt.state.model_params attaches them
wherever the policy runs, so gradients and the optimizer see only the adapters. B = 0 at
initialisation, so the initial policy is exactly the base, which is also the reference policy
(the adapters off).
"""
import math
from typing import Mapping, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rlpt.errors import UserError

TARGETS = ("q", "k", "v", "o", "gate", "up", "down")   # the projections that can take adapters
DEFAULTS = dict(rank=0, alpha=16.0, targets=TARGETS)


def scale(alpha: float, rank: int) -> float:
    """The adapters' multiplier `alpha / rank` (the paper's; rank 0: 1.0, unused)."""
    return float(alpha) / int(rank) if int(rank) > 0 else 1.0


def enabled(cfg) -> bool:
    """Whether a run config trains LoRA adapters (`cfg.lora.rank > 0`; a config from before
    LoRA existed has no `lora` section: off)."""
    section = cfg.get("lora") if hasattr(cfg, "get") else None
    return bool(section) and int(section.get("rank", 0)) > 0


def config_scale(cfg) -> float:
    """`scale(alpha, rank)` of a run config's `lora` section (1.0 when LoRA is off)."""
    if not enabled(cfg):
        return 1.0
    return scale(cfg.lora.get("alpha", DEFAULTS["alpha"]), cfg.lora.rank)


def validate_config(cfg) -> None:
    """The `lora` section of a run config, before anything is built (UserError naming the key):
    rank >= 0 (0 = off), alpha finite and > 0, targets a non-empty list of projection names
    (TARGETS) when rank > 0. A config without the section is LoRA off. The rank's upper bound
    depends on the model's shapes: `init_adapters` checks it at build time."""
    section = cfg.get("lora")
    if section is None:
        return
    rank = section.get("rank", 0)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise UserError(f"config lora.rank: {rank!r} must be an integer >= 0 (0 = LoRA off)")
    alpha = section.get("alpha", DEFAULTS["alpha"])
    try:
        ok = math.isfinite(float(alpha)) and float(alpha) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"config lora.alpha: {alpha!r} must be a finite number > 0 (the "
                        "adapters' scale is alpha / rank)")
    targets = section.get("targets", TARGETS)
    if isinstance(targets, str):
        raise UserError(f"config lora.targets: {targets!r} is a string; give a list of "
                        f"projection names, e.g. {list(TARGETS)}")
    targets = tuple(targets)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UserError(f"config lora.targets: {unknown} name no projection of the model; "
                        f"valid names: {list(TARGETS)}")
    if rank > 0 and not targets:
        raise UserError(f"config lora.targets: empty, but lora.rank={rank} > 0: name the "
                        f"projections that get adapters (valid: {list(TARGETS)}), or set "
                        "lora.rank=0 to train the full model")


def _is_dict(x) -> bool:
    return isinstance(x, Mapping)


def targeted_kernels(base, targets: Sequence[str]):
    """`[(path tuple, kernel)]` of every projection named in `targets`, in sorted path order."""
    found = []

    def walk(node, path):
        for k in sorted(node):
            v = node[k]
            if not _is_dict(v):
                continue
            if k in targets and "kernel" in v and not _is_dict(v["kernel"]):
                found.append((path + (k,), v["kernel"]))
            else:
                walk(v, path + (k,))
    walk(base, ())
    return found


def check_rank(base, rank: int, targets: Sequence[str]) -> None:
    """UserError ("config lora.rank") when `rank` exceeds min(in, out) of a targeted layer, or
    ("config lora.targets") when no layer of the model is targeted."""
    kernels = targeted_kernels(base, targets)
    if not kernels:
        raise UserError(f"config lora.targets: {list(targets)} match no projection of this "
                        f"model (valid: {list(TARGETS)})")
    for path, kernel in kernels:
        n_in, n_out = np.shape(kernel)[-2:]
        if rank > min(n_in, n_out):
            raise UserError(f"config lora.rank: {rank} exceeds min(in, out) = {min(n_in, n_out)}"
                            f" of {'/'.join(path)} (kernel [{n_in}, {n_out}]): a low-rank "
                            "update of higher rank than the layer is no low-rank update")


def init_adapters(base, rank: int, targets: Sequence[str] = TARGETS, rng=None):
    """Adapters of rank `rank` for every projection of `base` named in `targets`, as a nested
    dict of the targeted paths only, float32: `lora_a` [in, r] uniform in +-1/sqrt(in) (PEFT's
    kaiming-uniform with a=sqrt(5)), `lora_b` [r, out] zeros, so attach(base, adapters) computes
    exactly what `base` does. Refused (UserError) when `rank` exceeds a targeted layer's
    min(in, out) or nothing is targeted (`check_rank`)."""
    rank = int(rank)
    check_rank(base, rank, targets)
    kernels = targeted_kernels(base, targets)
    keys = jax.random.split(jax.random.PRNGKey(0) if rng is None else rng, len(kernels))
    out = {}
    for (path, kernel), key in zip(kernels, keys):
        n_in, n_out = np.shape(kernel)[-2:]
        bound = 1.0 / math.sqrt(n_in)
        node = out
        for k in path:
            node = node.setdefault(k, {})
        node["lora_a"] = jax.random.uniform(key, (n_in, rank), jnp.float32, -bound, bound)
        node["lora_b"] = jnp.zeros((rank, n_out), jnp.float32)
    return out


def attach(base, adapters):
    """`base` with `adapters` overlaid (nested dicts merged key by key; a leaf or a subtree that
    `base` lacks, e.g. PPO's `value_head`, is carried over as it is). New dicts along the
    adapters' paths only: the base's arrays are shared, never copied."""
    if not adapters:
        return base
    out = dict(base)
    for k, v in adapters.items():
        if k in out and _is_dict(v) and _is_dict(out[k]):
            out[k] = attach(out[k], v)
        else:
            out[k] = v
    return out


def merge(base, adapters, lora_scale: float):
    """Plain parameters: every adapted `kernel` replaced by `kernel + lora_a @ lora_b *
    lora_scale` (float32), the adapters dropped, every other floating leaf as float32. The model
    applied to them computes what it computes on `attach(base, adapters)` up to float rounding.
    Works on stacked trees too (a sweep's leading run axis)."""
    def fold(node):
        if not _is_dict(node):
            x = jnp.asarray(node)
            return x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x
        if "lora_a" in node:
            delta = jnp.matmul(node["lora_a"].astype(jnp.float32),
                               node["lora_b"].astype(jnp.float32),
                               precision=jax.lax.Precision.HIGHEST)
            rest = {k: fold(v) for k, v in node.items() if k not in ("lora_a", "lora_b")}
            rest["kernel"] = rest["kernel"] + delta * jnp.float32(lora_scale)
            return rest
        return {k: fold(v) for k, v in node.items()}
    return fold(attach(base, adapters))


def base_weights(params, dtype):
    """The frozen base as a train state holds it: matrices (kernels, the embedding) in the
    compute `dtype` (bfloat16 halves the base's memory; the model casts them to it anyway),
    vectors (norm scales, biases: RMSNorm computes in float32) as they are. float32 returns the
    arrays as given (no copy)."""
    dtype = jnp.dtype(dtype)

    def cast(x):
        if jnp.ndim(x) >= 2 and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) \
                and jnp.asarray(x).dtype != dtype:
            return jnp.asarray(x, dtype)
        return x
    return jax.tree_util.tree_map(cast, params)


def split(params, rank: int, targets: Sequence[str], rng, dtype, trainable=()) -> Tuple:
    """A full parameter tree -> `(trainable, base)`: the adapters of `init_adapters` plus the
    top-level subtrees named in `trainable` (e.g. a reward model's `value_head`), and the rest
    as the frozen base (`base_weights` in `dtype`)."""
    frozen = {k: v for k, v in params.items() if k not in trainable}
    adapters = init_adapters(frozen, rank, targets, rng)
    adapters.update({k: v for k, v in params.items() if k in trainable})
    return adapters, base_weights(frozen, dtype)

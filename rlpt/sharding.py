"""Device mesh from config, logical-axis rules, and shardings for params, batches and KV caches.

A mesh is given as ordered `{axis_name: size}` with at most one size -1 ("the rest"), e.g.
`{"data": -1, "fsdp": 1, "tensor": 1}` or `{"data": 2, "fsdp": 2, "tensor": 2}`.

Every parameter gets logical axes from its name (`PARAM_LOGICAL_AXES`); `rules` map each
logical axis to mesh axes. Defaults: batch over (data, fsdp); the embedding (d_model) dimension
of every weight over fsdp (ZeRO-3 style: gathered for compute); heads, kv-heads, MLP hidden and
vocab over tensor (Megatron style). A dimension that a mesh axis does not divide is an error
naming the parameter, its shape and the mesh.
"""
from typing import Dict, Optional, Sequence, Tuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rlpt.distributed import global_array

DEFAULT_RULES: Dict[str, Tuple[str, ...]] = {
    "batch": ("data", "fsdp"),
    "embed": ("fsdp",),
    "vocab": ("tensor",),
    "heads": ("tensor",),
    "kv_heads": ("tensor",),
    "mlp": ("tensor",),
}

# Logical axes of each parameter, keyed by (module name, param name) at the end of its path.
PARAM_LOGICAL_AXES = {
    ("embed", "embedding"): ("vocab", "embed"),
    ("q", "kernel"): ("embed", "heads"), ("q", "bias"): ("heads",),
    ("k", "kernel"): ("embed", "kv_heads"), ("k", "bias"): ("kv_heads",),
    ("v", "kernel"): ("embed", "kv_heads"), ("v", "bias"): ("kv_heads",),
    ("o", "kernel"): ("heads", "embed"),
    ("gate", "kernel"): ("embed", "mlp"), ("up", "kernel"): ("embed", "mlp"),
    ("down", "kernel"): ("mlp", "embed"),
    ("lm_head", "kernel"): ("embed", "vocab"),
    ("value_head", "kernel"): ("embed", None), ("value_head", "bias"): (None,),
}
# LoRA adapters (rlpt.models.lora) of each projection: A [in, r] shards `in` as the kernel's first
# axis, B [r, out] `out` as its second; the rank r is never sharded.
PARAM_LOGICAL_AXES.update({
    ("q", "lora_a"): ("embed", None), ("q", "lora_b"): (None, "heads"),
    ("k", "lora_a"): ("embed", None), ("k", "lora_b"): (None, "kv_heads"),
    ("v", "lora_a"): ("embed", None), ("v", "lora_b"): (None, "kv_heads"),
    ("o", "lora_a"): ("heads", None), ("o", "lora_b"): (None, "embed"),
    ("gate", "lora_a"): ("embed", None), ("gate", "lora_b"): (None, "mlp"),
    ("up", "lora_a"): ("embed", None), ("up", "lora_b"): (None, "mlp"),
    ("down", "lora_a"): ("mlp", None), ("down", "lora_b"): (None, "embed"),
})


def make_mesh(axes: Dict[str, int], devices: Optional[Sequence] = None) -> Mesh:
    """Builds a Mesh from ordered {name: size}; one size may be -1 for the remaining devices."""
    devices = list(jax.devices() if devices is None else devices)
    names, sizes = list(axes.keys()), list(axes.values())
    if sum(s == -1 for s in sizes) > 1:
        raise ValueError(f"mesh {axes}: at most one axis may have size -1")
    if any(s == 0 or s < -1 for s in sizes):
        raise ValueError(f"mesh {axes}: sizes must be positive or -1")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"mesh {axes}: the fixed axes multiply to {known}, which does not "
                             f"divide the {len(devices)} available devices")
        sizes = [len(devices) // known if s == -1 else s for s in sizes]
    total = int(np.prod(sizes))
    if total != len(devices):
        raise ValueError(f"mesh {dict(zip(names, sizes))} needs {total} devices but "
                         f"{len(devices)} are available ({devices[0].platform})")
    return Mesh(np.array(devices).reshape(sizes), tuple(names))


def _mesh_axes(mesh: Mesh, logical, rules) -> Optional[Tuple[str, ...]]:
    if logical is None:
        return None
    axes = tuple(a for a in rules.get(logical, ()) if a in mesh.shape and mesh.shape[a] > 1)
    return axes or None


def _spec(mesh: Mesh, logical_axes, shape, rules, what: str) -> P:
    parts = []
    for dim, (logical, size) in enumerate(zip(logical_axes, shape)):
        axes = _mesh_axes(mesh, logical, rules)
        if axes is not None:
            n = int(np.prod([mesh.shape[a] for a in axes]))
            if size % n:
                raise ValueError(
                    f"{what}: dimension {dim} (logical axis {logical!r}, size {size}) is not "
                    f"divisible by mesh axes {axes} of total size {n} (mesh {dict(mesh.shape)}); "
                    f"change the mesh or the rule for {logical!r}")
        parts.append(axes)
    return P(*parts)


def param_logical_axes(params):
    """Pytree of logical-axis tuples, one per parameter (norm scales are replicated)."""
    def axes(path, leaf):
        keys = [getattr(k, "key", str(k)) for k in path]
        return PARAM_LOGICAL_AXES.get(tuple(keys[-2:]), (None,) * np.ndim(leaf))
    return jax.tree_util.tree_map_with_path(axes, params)


def param_shardings(params, mesh: Mesh, rules=DEFAULT_RULES):
    """NamedSharding per parameter (params may be arrays or ShapeDtypeStructs)."""
    def shard(path, leaf):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        keys = [getattr(k, "key", str(k)) for k in path]
        logical = PARAM_LOGICAL_AXES.get(tuple(keys[-2:]), (None,) * len(leaf.shape))
        return NamedSharding(mesh, _spec(mesh, logical, leaf.shape, rules, f"param {name}"))
    return jax.tree_util.tree_map_with_path(shard, params)


def batch_sharding(mesh: Mesh, ndim: int, batch_size: Optional[int] = None, rules=DEFAULT_RULES,
                   what: str = "batch") -> NamedSharding:
    """Leading (batch) axis over the batch mesh axes, the rest replicated."""
    shape = (batch_size if batch_size is not None else 0,) + (1,) * (ndim - 1)
    logical = ("batch",) + (None,) * (ndim - 1)
    if batch_size is None:
        return NamedSharding(mesh, P(_mesh_axes(mesh, "batch", rules), *([None] * (ndim - 1))))
    return NamedSharding(mesh, _spec(mesh, logical, shape, rules, what))


def shard_batch(batch, mesh: Mesh, rules=DEFAULT_RULES):
    """Places every array of a batch dict with its leading axis over the batch mesh axes. With
    several processes each contributes only the rows its devices hold (rlpt.distributed)."""
    return {k: global_array(np.asarray(v), batch_sharding(mesh, np.ndim(v), np.shape(v)[0],
                                                          rules, f"batch[{k!r}]"))
            for k, v in batch.items()}


def cache_sharding(mesh: Mesh, cache, rules=DEFAULT_RULES):
    """KV cache (one `[B, KVH, S, hd]` array per layer): batch over the batch axes, kv heads
    over tensor."""
    logical = ("batch", "kv_heads", None, None)
    return {k: [NamedSharding(mesh, _spec(mesh, logical, a.shape, rules, f"cache[{k!r}][{i}]"))
                for i, a in enumerate(layers)]
            for k, layers in cache.items()}


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def place_params(tree, mesh: Mesh, rules=DEFAULT_RULES):
    """Puts a parameter pytree (or None) on the mesh with the parameter rules."""
    return None if tree is None else jax.device_put(tree, param_shardings(tree, mesh, rules))


def init_opt_state(optimizer, trainable, mesh: Mesh):
    """`optimizer.init(trainable)` on the mesh: moments follow the (placed) trainable params'
    shardings by propagation; leaves made from constants (optax's step count) would land on
    one device, so they are replicated explicitly."""
    devices = set(mesh.devices.flat)
    rep = replicated(mesh)
    return jax.tree_util.tree_map(
        lambda x: x if x.sharding.device_set == devices else jax.device_put(x, rep),
        jax.jit(optimizer.init)(trainable))

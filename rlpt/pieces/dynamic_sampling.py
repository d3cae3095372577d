"""DAPO dynamic sampling (arXiv:2503.14476) with static shapes, for any algorithm
(`algo.dynamic_sampling`, `algo.oversample`; DAPO turns it on by default).

A group is degenerate when the chosen per-sample metric is constant over its G samples
(`max - min <= dynamic_sampling_atol`); `dynamic_sampling_metric` = "correct" (the paper's
accuracy filter, default), "raw" (task reward values) or "shaped" (the shaped rewards).
Degenerate groups get `keep = 0`, which removes their tokens from the loss (and from token-mean
denominators). With `oversample = k > 1` the step samples `k * batch_size` prompts and keeps
`batch_size` groups, non-degenerate ones first (in sampled order), so the effective batch is as
full as one over-sampled round allows; the paper's "keep sampling until full" loop has no static
shape and is not implemented.

Two pieces: `dynamic_sampling` (the keep mask, after the advantages) and `oversample` (the group
selection, before them).
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import group_rows
from rlpt.algorithms.base import Piece, correct_of
from rlpt.errors import UserError

METRICS = ("correct", "raw", "shaped")


def dynamic_sampling_mask(rewards_N, group_size, atol=0.0):
    """DAPO dynamic sampling for fixed shapes: a group whose rewards are all equal (max - min <=
    atol) is degenerate (zero advantage). Returns `(keep_N float 0/1, n_kept_groups)`; the loss
    multiplies its mask by keep_N so dropped groups contribute nothing."""
    r_BG = group_rows(rewards_N, group_size)
    keep_B = (jnp.max(r_BG, axis=1) - jnp.min(r_BG, axis=1)) > atol
    keep_N = jnp.repeat(keep_B, group_size).astype(rewards_N.dtype)
    return keep_N, jnp.sum(keep_B)



def keep_mask(raw_N, shaped_N, algo, group_size):
    """DAPO keep mask: `(keep_N float 0/1, n_kept_groups)` (module doc)."""
    metric = algo.get("dynamic_sampling_metric", "correct")
    x_N = {"correct": lambda: correct_of(raw_N, algo).astype(jnp.float32),
           "raw": lambda: raw_N, "shaped": lambda: shaped_N}[metric]()
    return dynamic_sampling_mask(x_N, group_size, algo.get("dynamic_sampling_atol", 0.0))


def select_groups(batch, out, raw_N, shaped_N, algo, group_size, n_groups):
    """Over-sampling: keeps `n_groups` of the sampled groups, non-degenerate first (stable).
    `batch` arrays have the sampled prompts on axis 0, `out` and the rewards their N rows.
    Returns the selected `(batch, out, raw_N, shaped_N, metrics)`."""
    G = group_size
    keep_N, n_kept = keep_mask(raw_N, shaped_N, algo, G)
    keep_B = keep_N.reshape(-1, G)[:, 0]
    sel_B = jnp.argsort(1.0 - keep_B, stable=True)[:n_groups]
    rows_N = (sel_B[:, None] * G + jnp.arange(G)).reshape(-1)
    take_rows = lambda x: x[rows_N]
    batch = {k: v[sel_B] for k, v in batch.items()}
    out = jax.tree_util.tree_map(take_rows, out)
    metrics = {"sampled_groups": jnp.float32(keep_B.shape[0]),
               "sampled_nondegenerate_groups": n_kept.astype(jnp.float32)}
    return batch, out, take_rows(raw_N), take_rows(shaped_N), metrics


def validate(cfg):
    a = cfg.algo
    if a.get("dynamic_sampling_metric", "correct") not in METRICS:
        raise UserError(f"config algo.dynamic_sampling_metric: {a.dynamic_sampling_metric!r}; "
                        f"known: {list(METRICS)}")


def validate_oversample(cfg):
    a = cfg.algo
    if int(a.get("oversample", 1)) < 1:
        raise UserError(f"config algo.oversample: {a.oversample} must be >= 1")
    if int(a.get("oversample", 1)) > 1 and not a.get("dynamic_sampling", False):
        raise UserError("config algo.oversample: over-sampling needs "
                        "algo.dynamic_sampling=True")


def keep_extras(spec, state, batch, out, data, raw_N, c, key):
    keep, n_kept = keep_mask(raw_N, data["rewards"], c, spec.G)
    return dict(data, keep=keep), {}, {"effective_groups": n_kept.astype(jnp.float32)}


def select(spec, batch, out, raw_N, r_N, c):
    return select_groups(batch, out, raw_N, r_N, c, spec.G, spec.batch_size)


DYNAMIC_SAMPLING = registry.register("piece", "dynamic_sampling")(Piece(
    "dynamic_sampling", defaults=dict(dynamic_sampling=False, dynamic_sampling_metric="correct",
                                      dynamic_sampling_atol=0.0),
    dynamic=frozenset({"dynamic_sampling_atol"}), active=lambda a: bool(a.get("dynamic_sampling")),
    validate=validate, extras=keep_extras))
OVERSAMPLE = registry.register("piece", "oversample")(Piece(
    "oversample", defaults=dict(oversample=1), active=lambda a: int(a.get("oversample", 1)) > 1,
    validate=validate_oversample, select=select))

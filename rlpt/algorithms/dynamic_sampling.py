"""DAPO dynamic sampling (arXiv:2503.14476) with static shapes; any algorithm may turn it on
(`algo.dynamic_sampling`, `algo.oversample`), DAPO does by default.

A group is degenerate when the chosen per-sample metric is constant over its G samples
(`max - min <= dynamic_sampling_atol`); `dynamic_sampling_metric` = "correct" (the paper's
accuracy filter, default), "raw" (task reward values) or "shaped" (the shaped rewards).
Degenerate groups get `keep = 0`, which removes their tokens from the loss (and from token-mean
denominators). With `oversample = k > 1` the step samples `k * batch_size` prompts and keeps
`batch_size` groups, non-degenerate ones first (in sampled order), so the effective batch is as
full as one over-sampled round allows; the paper's "keep sampling until full" loop has no static
shape and is not implemented.
"""
import jax
import jax.numpy as jnp

from rlpt.advantages import dynamic_sampling_mask
from rlpt.algorithms.shaping import correct_of

METRICS = ("correct", "raw", "shaped")


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

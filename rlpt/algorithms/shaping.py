"""Reward shaping applied before advantages, and DAPO dynamic sampling with static shapes.

`cfg.algo.shaping` is an ordered list of names; each maps the rewards [N] to new rewards [N]:

| name                  | formula (objectives.md §2)                                           |
|-----------------------|-----------------------------------------------------------------------|
| `dapo_reward_pm1`     | `r = reward_correct if correct else reward_wrong` (DAPO: +1 / -1)     |
| `dapo_overlong`       | `r += R_len(|y|)`, DAPO eq. 13 with `overlong_max`, `overlong_cache`  |
| `kimi_length_penalty` | `r += length_penalty_weight * len_reward` (Kimi k1.5, within group)   |
| `unlikeliness`        | `r *= 1 - beta_rank * rank / G` (rank by mean sampled log-prob)        |

"correct" always means the task reward before shaping exceeds `algo.success_threshold`.

Dynamic sampling (DAPO, arXiv:2503.14476): a group is degenerate when the chosen per-sample
metric is constant over its G samples (`max - min <= dynamic_sampling_atol`);
`dynamic_sampling_metric` = "correct" (the paper's accuracy filter, default), "raw" (task reward
values) or "shaped" (the shaped rewards). Degenerate groups get `keep = 0`, which removes their
tokens from the loss (and from token-mean denominators). With `oversample = k > 1` the step
samples `k * batch_size` prompts and keeps `batch_size` groups, non-degenerate ones first (in
sampled order), so the effective batch is as full as one over-sampled round allows; the paper's
"keep sampling until full" loop has no static shape and is not implemented.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import dynamic_sampling_mask, unlikeliness_shaped_rewards
from rlpt.losses.aggregation import masked_mean

SHAPING_NAMES = ("dapo_reward_pm1", "dapo_overlong", "kimi_length_penalty", "unlikeliness")
DYNAMIC_SAMPLING_METRICS = ("correct", "raw", "shaped")


def correct_of(raw_N, algo):
    return raw_N > float(algo.get("success_threshold", 0.0))


def shape_rewards(names, raw_N, out, algo, group_size):
    """Applies the shaping `names` in order to the task rewards `raw_N` [N] (module doc).
    `out` is the SampleOutput (lengths, mask, sampled log-probs)."""
    correct_N = correct_of(raw_N, algo)
    r = raw_N
    for name in names:
        if name == "dapo_reward_pm1":
            r = jnp.where(correct_N, float(algo.get("reward_correct", 1.0)),
                          float(algo.get("reward_wrong", -1.0))).astype(raw_N.dtype)
        elif name in ("dapo_overlong", "kimi_length_penalty"):
            r = registry.get("advantage", name)(r, out.mask, algo, lengths=out.lengths,
                                                correct=correct_N)
        elif name == "unlikeliness":
            seq_logp_N = masked_mean(out.logprobs, out.mask, axis=-1)
            r = unlikeliness_shaped_rewards(r, seq_logp_N, group_size,
                                            float(algo.get("beta_rank", 0.25)),
                                            algo.get("rank_among", "group"))
        else:
            raise ValueError(f"unknown shaping {name!r}; known: {list(SHAPING_NAMES)}")
    return r.astype(jnp.float32)


def keep_mask(raw_N, shaped_N, algo, group_size):
    """DAPO keep mask: `(keep_N float 0/1, n_kept_groups)` (module doc)."""
    metric = algo.get("dynamic_sampling_metric", "correct")
    x_N = {"correct": lambda: correct_of(raw_N, algo).astype(jnp.float32),
           "raw": lambda: raw_N, "shaped": lambda: shaped_N}[metric]()
    return dynamic_sampling_mask(x_N, group_size, float(algo.get("dynamic_sampling_atol", 0.0)))


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

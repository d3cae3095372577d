"""Aggregation of a per-token loss `l [N, T]` with a completion mask `m [N, T]` to a scalar.

| mode                      | formula                                                        |
|---------------------------|----------------------------------------------------------------|
| `token_mean`              | `sum(l*m) / sum(m)` over the whole batch (DAPO, GTPO, TRL)     |
| `seq_mean_token_mean`     | mean over sequences of `sum_t(l*m) / sum_t(m)` (GRPO, GSPO)    |
| `seq_mean_token_sum`      | mean over sequences of `sum_t(l*m)`                            |
| `seq_mean_token_sum_norm` | `sum(l*m) / (N * L_norm)`, `L_norm` constant (Dr. GRPO)        |

Choices (objectives.md leaves them open):
- the two `seq_mean_*` modes average over sequences that have at least one unmasked token
  (as current verl does), so padded rows and groups dropped by dynamic sampling (mask zeroed) do
  not dilute the mean; with every row non-empty this is the plain mean over N;
- `seq_mean_token_sum_norm` divides by the row count N and by `l_norm` (default: T, the
  fixed max-new-tokens buffer), both constants, as Dr. GRPO intends;
- every denominator is floored at 1, so an all-zero mask gives 0, never NaN.
"""
import jax.numpy as jnp

AGG_MODES = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm")


def aggregate(per_token_loss, mask, mode, l_norm=None):
    """Reduces `per_token_loss [N, T]` under `mask [N, T]` to a scalar by `mode` (module doc)."""
    if mode not in AGG_MODES:
        raise ValueError(f"unknown loss aggregation mode {mode!r}; known modes: {list(AGG_MODES)}")
    mask = mask.astype(per_token_loss.dtype)
    lm_NT = per_token_loss * mask
    if mode == "token_mean":
        return jnp.sum(lm_NT) / jnp.maximum(jnp.sum(mask), 1.0)
    if mode == "seq_mean_token_sum_norm":
        norm = per_token_loss.shape[-1] if l_norm is None else l_norm
        return jnp.sum(lm_NT) / (per_token_loss.shape[0] * norm)
    len_N = jnp.sum(mask, axis=-1)
    seq_N = jnp.sum(lm_NT, axis=-1)
    if mode == "seq_mean_token_mean":
        seq_N = seq_N / jnp.maximum(len_N, 1.0)
    nonempty_N = (len_N > 0).astype(per_token_loss.dtype)
    return jnp.sum(seq_N * nonempty_N) / jnp.maximum(jnp.sum(nonempty_N), 1.0)


def masked_mean(x, mask, axis=None):
    """`sum(x*m) / max(sum(m), 1)` along `axis` (all axes by default)."""
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask, axis=axis) / jnp.maximum(jnp.sum(mask, axis=axis), 1.0)


def completion_mask(batch):
    """`batch["mask"]` times the per-sequence dynamic-sampling keep mask `batch["keep"]`, if any."""
    mask_NT = batch["mask"]
    if "keep" in batch:
        mask_NT = mask_NT * batch["keep"][:, None].astype(mask_NT.dtype)
    return mask_NT

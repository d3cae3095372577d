"""GSPO (arXiv:2507.18071): the sequence-level importance ratio, clipped per sequence."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.aggregation import completion_mask
from rlpt.losses.policy import (add_sequence_kl_and_entropy, nonempty_mean, resolve,
                               sequence_advantages, sequence_log_ratio)


DEFAULTS = dict(eps_low=3e-4, eps_high=4e-4, log_ratio_clamp=10.0)
DYNAMIC = frozenset()


@registry.register("loss", "gspo")
def gspo_loss(batch, cfg):
    """GSPO (arXiv:2507.18071): `s_i = exp(mean_t (logp - old_logp))` over completion tokens
    (log s clamped at 10, verl), `J = mean_i min(s_i A_i, clip(s_i, 1-3e-4, 1+4e-4) A_i)`, no KL.
    Per-token advantages are averaged over the sequence."""
    c = resolve(cfg, "gspo", DEFAULTS)
    mask_NT = completion_mask(batch)
    A_N = sequence_advantages(batch["advantages"], mask_NT)
    log_s_N = jnp.minimum(sequence_log_ratio(batch["logp"], batch["old_logp"], mask_NT),
                          c.log_ratio_clamp)
    s_N = jnp.exp(log_s_N)
    unclipped = -A_N * s_N
    clipped = -A_N * jnp.clip(s_N, 1.0 - c.eps_low, 1.0 + c.eps_high)
    seq_loss_N = jnp.maximum(unclipped, clipped)
    metrics = {"pg_loss": nonempty_mean(seq_loss_N, mask_NT),
               "clip_frac": nonempty_mean((clipped > unclipped).astype(s_N.dtype), mask_NT),
               "ratio_mean": nonempty_mean(s_N, mask_NT)}
    loss = metrics["pg_loss"]
    return add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics)



ALGORITHM = registry.register("algorithm", "gspo")(Algorithm(
    "gspo", gspo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

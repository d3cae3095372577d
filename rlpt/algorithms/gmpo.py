"""GMPO (arXiv:2507.20673): the geometric mean of token ratios, clipped in log space."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.aggregation import completion_mask, masked_mean
from rlpt.losses.policy import (add_sequence_kl_and_entropy, nonempty_mean, resolve,
                               sequence_advantages, token_advantages)


DEFAULTS = dict(eps_low=0.4, eps_high=0.4)
DYNAMIC = frozenset()


@registry.register("loss", "gmpo")
def gmpo_loss(batch, cfg):
    """GMPO (arXiv:2507.20673; authors' code / verl geo_mean): per-token `d = logp - old_logp`
    clipped one-sided in log space before the mean (A>0: min(d, eps_high); A<0: max(d, -eps_low)),
    sequence ratio `exp(mean_t clipped d)`, `J = mean_i A_i ratio_i`; eps=0.4, no KL."""
    c = resolve(cfg, "gmpo", DEFAULTS)
    mask_NT = completion_mask(batch)
    adv_NT = token_advantages(batch["advantages"], mask_NT)
    d_NT = batch["logp"] - batch["old_logp"]
    d_clip_NT = jnp.where(adv_NT > 0, jnp.minimum(d_NT, c.eps_high),
                          jnp.where(adv_NT < 0, jnp.maximum(d_NT, -c.eps_low), d_NT))
    ratio_N = jnp.exp(masked_mean(d_clip_NT, mask_NT, axis=-1))
    seq_loss_N = -sequence_advantages(batch["advantages"], mask_NT) * ratio_N
    loss = nonempty_mean(seq_loss_N, mask_NT)
    metrics = {"pg_loss": loss,
               "clip_frac": masked_mean((d_clip_NT != d_NT).astype(d_NT.dtype), mask_NT),
               "ratio_mean": nonempty_mean(ratio_N, mask_NT)}
    return add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics)



ALGORITHM = registry.register("algorithm", "gmpo")(Algorithm(
    "gmpo", gmpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

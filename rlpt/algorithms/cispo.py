"""CISPO (MiniMax-M1, arXiv:2506.13585 eq. 4-5): clip the importance-sampling WEIGHT, not the
update, so every token keeps its gradient:

    J = 1/sum_i |o_i| * sum_i sum_t sg(clip(r_it, 1 - eps_low, 1 + eps_high)) * A_it * log pi(o_it)

with `r_it = pi(o_it) / pi_old(o_it)` and `sg` the stop-gradient; token-mean over the batch, no
KL by default. The gradient of a token is `clip(r) A grad log pi` whether or not the ratio is
outside the range (PPO's clip would zero it there). At r = 1 (on-policy) the gradient equals the
REINFORCE / GRPO token gradient `A grad log pi / sum |o|`.

Defaults: `eps_low = 1.0` (no lower bound, as in the paper), `eps_high = 0.28` (the paper does
not state its value; DAPO's clip-higher value is this codebase's choice), GRPO advantages.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.aggregation import completion_mask, masked_mean
from rlpt.losses.policy import add_kl_and_entropy, resolve, token_weighted

DEFAULTS = dict(eps_low=1.0, eps_high=0.28, loss_agg="token_mean", advantage="grpo", beta=0.0)


def cispo_token_loss(logp_NT, old_logp_NT, adv_NT, eps_low, eps_high, log_ratio_clamp=20.0):
    """Per-token `-sg(clip(r, 1-eps_low, 1+eps_high)) * A * logp` and the clipped-ratio mask."""
    ratio = jnp.exp(jnp.clip(logp_NT - old_logp_NT, -log_ratio_clamp, log_ratio_clamp))
    weight = jax.lax.stop_gradient(jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high))
    clipped = (ratio < 1.0 - eps_low) | (ratio > 1.0 + eps_high)
    return -weight * adv_NT * logp_NT, ratio, clipped


@registry.register("loss", "cispo")
def cispo_loss(batch, cfg):
    """CISPO (module doc); metrics `clip_frac` (share of tokens whose weight is clipped)."""
    c = resolve(cfg, "cispo", DEFAULTS)
    mask_NT = completion_mask(batch)
    adv = batch["advantages"]
    adv_NT = adv[:, None] * mask_NT if adv.ndim == 1 else adv
    pg_NT, ratio_NT, clipped_NT = cispo_token_loss(batch["logp"], batch["old_logp"], adv_NT,
                                                   c.eps_low, c.eps_high, c.log_ratio_clamp)
    pg_NT = token_weighted(pg_NT, batch)
    metrics = {"clip_frac": masked_mean(clipped_NT.astype(pg_NT.dtype), mask_NT),
               "ratio_mean": masked_mean(ratio_NT, mask_NT)}
    loss = add_kl_and_entropy(pg_NT, batch, c, mask_NT, metrics)
    return loss, metrics


ALGORITHM = registry.register("algorithm", "cispo")(Algorithm("cispo", cispo_loss,
                                                              defaults=DEFAULTS))

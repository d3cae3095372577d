"""Robust DPO (Chowdhury et al., arXiv 2403.00409, eq. 8): the unbiased DPO loss under labels
flipped with a known rate eps < 1/2, on offline pairs with the SFT reference; beta 0.1,
eps 0.1."""
import jax

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.algorithms.cdpo import validate_flip_rate
from rlpt.losses.preference import margin_of, pairwise_result, resolve_config

DEFAULTS = dict(beta=0.1, eps=0.1)
DYNAMIC = frozenset({"beta", "eps"})


def rdpo_losses(h, beta, eps):
    """Robust DPO (Chowdhury et al., arXiv 2403.00409, eq. 8): the unbiased loss under labels
    flipped with known rate eps < 1/2:
    `l = (-(1-eps) log sig(beta h) + eps log sig(-beta h)) / (1 - 2 eps)`;
    weight `((1-eps) sig(-beta h) + eps sig(beta h)) / (1 - 2 eps)`.
    A Python `eps` outside [0, 1/2) raises (a traced one is checked by the config's validate).
    """
    if isinstance(eps, (int, float)) and not 0.0 <= eps < 0.5:
        raise ValueError(f"robust DPO needs 0 <= eps < 0.5, got eps={eps}")
    norm = 1.0 - 2.0 * eps
    losses = (-(1.0 - eps) * jax.nn.log_sigmoid(beta * h) + eps * jax.nn.log_sigmoid(-beta * h))
    weights = (1.0 - eps) * jax.nn.sigmoid(-beta * h) + eps * jax.nn.sigmoid(beta * h)
    return losses / norm, weights / norm


@registry.register("loss", "rdpo")
def rdpo_loss(batch, cfg):
    """Robust DPO (arXiv 2403.00409); see `rdpo_losses`. cfg: beta, eps (< 0.5)."""
    cfg = resolve_config(cfg, DEFAULTS, "rdpo")
    h = margin_of(batch)
    losses, weights = rdpo_losses(h, cfg.beta, cfg.eps)
    return pairwise_result(losses, weights, h, batch, cfg.beta)


ALGORITHM = registry.register("algorithm", "rdpo")(Algorithm(
    "rdpo", rdpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference",
    validate=validate_flip_rate))

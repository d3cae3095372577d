"""Conservative DPO / label-smoothed DPO (Mitchell's 2023 note; discussed as cDPO in Chowdhury et
al., arXiv 2403.00409): DPO against a label flipped with probability eps, on offline pairs with
the SFT reference; beta 0.1, eps 0.1."""
import jax

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.losses.preference import margin_of, pairwise_result, resolve_config

DEFAULTS = dict(beta=0.1, eps=0.1)
DYNAMIC = frozenset({"beta", "eps"})


def cdpo_losses(h, beta, eps):
    """Conservative DPO / label smoothing (arXiv 2403.00409 discusses it as cDPO):
    `l = -(1-eps) log sig(beta h) - eps log sig(-beta h)`:
    DPO against a label flipped with probability eps.
    Weight `(1-eps) sig(-beta h) - eps sig(beta h) = 1 - eps - sig(beta h)`: negative once
    `sig(beta h) > 1 - eps`, where the loss pulls the margin back (it does not grow without bound).
    """
    losses = -(1.0 - eps) * jax.nn.log_sigmoid(beta * h) - eps * jax.nn.log_sigmoid(-beta * h)
    weights = (1.0 - eps) * jax.nn.sigmoid(-beta * h) - eps * jax.nn.sigmoid(beta * h)
    return losses, weights


@registry.register("loss", "cdpo")
def cdpo_loss(batch, cfg):
    """cDPO / label-smoothed DPO; see `cdpo_losses`. cfg: beta, eps."""
    cfg = resolve_config(cfg, DEFAULTS, "cdpo")
    h = margin_of(batch)
    losses, weights = cdpo_losses(h, cfg.beta, cfg.eps)
    return pairwise_result(losses, weights, h, batch, cfg.beta)


def validate_flip_rate(cfg):
    """`algo.eps` (when set) is a label-flip rate below 1/2 (cdpo, rdpo; online_dpo with one of
    them as its loss)."""
    eps = cfg.algo.get("eps")
    if eps is not None and not 0 <= eps < 0.5:
        raise UserError(f"config algo.eps: {eps} must be in [0, 0.5)")


ALGORITHM = registry.register("algorithm", "cdpo")(Algorithm(
    "cdpo", cdpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference",
    validate=validate_flip_rate))

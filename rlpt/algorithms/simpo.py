"""SimPO (Meng et al., arXiv 2405.14734): reference-free preference optimisation on offline pairs
with the length-normalised log-prob margin and a target margin gamma; beta 2.0, gamma 0.5.
No frozen reference (`ref_keys` None)."""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.preference import pairwise_result, resolve_config

DEFAULTS = dict(beta=2.0, gamma=0.5)
DYNAMIC = frozenset({"beta", "gamma"})


def simpo_margin(logp_w, logp_l, len_w, len_l):
    """Length-normalised log-prob difference `logp_w/|y_w| - logp_l/|y_l|`."""
    return logp_w / jnp.maximum(len_w, 1) - logp_l / jnp.maximum(len_l, 1)


def simpo_losses(logp_w, logp_l, len_w, len_l, beta, gamma):
    """SimPO (arXiv 2405.14734, eq. 6), reference-free:
    `u = logp_w/|y_w| - logp_l/|y_l|`, `l = -log sig(beta u - gamma)`; weight `sig(gamma - beta u)`.
    `gamma` is the absolute margin (the released code's `gamma_beta_ratio` is gamma / beta).
    Lengths below 1 are treated as 1.
    """
    u = simpo_margin(logp_w, logp_l, len_w, len_l)
    z = beta * u - gamma
    return -jax.nn.log_sigmoid(z), jax.nn.sigmoid(-z)


@registry.register("loss", "simpo")
def simpo_loss(batch, cfg):
    """SimPO (arXiv 2405.14734); see `simpo_losses`. Keys: logp_w, logp_l, len_w, len_l."""
    cfg = resolve_config(cfg, DEFAULTS, "simpo")
    u = simpo_margin(batch["logp_w"], batch["logp_l"], batch["len_w"], batch["len_l"])
    losses, weights = simpo_losses(
        batch["logp_w"], batch["logp_l"], batch["len_w"], batch["len_l"], cfg.beta, cfg.gamma)
    return pairwise_result(losses, weights, u, batch, None)


ALGORITHM = registry.register("algorithm", "simpo")(Algorithm(
    "simpo", simpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference",
    trainer_hooks=dict(ref_keys=lambda c: None)))

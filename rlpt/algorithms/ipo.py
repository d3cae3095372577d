"""IPO (Azar et al., arXiv 2310.12036): the squared loss `(h - 1/(2 tau))**2` on the implicit
margin of offline pairs (rlpt.losses.preference), against the SFT reference; tau 0.1.
`length_normalize=True` divides each log-prob by its response length first (TRL's IPO)."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.preference import implicit_margin, pairwise_result, resolve_config

DEFAULTS = dict(tau=0.1, length_normalize=False)
DYNAMIC = frozenset({"tau"})


def ipo_losses(h, tau):
    """IPO (arXiv 2310.12036, eq. 17): `l = (h - 1/(2 tau))**2`; weight `-dl/dh = 1/tau - 2h`."""
    target = 1.0 / (2.0 * tau)
    return (h - target) ** 2, -2.0 * (h - target)


@registry.register("loss", "ipo")
def ipo_loss(batch, cfg):
    """IPO (arXiv 2310.12036): mean of `(h - 1/(2 tau))**2`.

    `cfg.length_normalize=False` (default, the spec's reading) uses sequence-summed log-probs;
    True divides each log-prob by its response length first (`len_w`, `len_l`), as TRL's IPO does.
    """
    cfg = resolve_config(cfg, DEFAULTS, "ipo")
    logp_w, logp_l, ref_w, ref_l = (batch[k] for k in ("logp_w", "logp_l", "ref_w", "ref_l"))
    if cfg.length_normalize:
        n_w, n_l = jnp.maximum(batch["len_w"], 1), jnp.maximum(batch["len_l"], 1)
        logp_w, ref_w, logp_l, ref_l = logp_w / n_w, ref_w / n_w, logp_l / n_l, ref_l / n_l
    h = implicit_margin(logp_w, logp_l, ref_w, ref_l)
    losses, weights = ipo_losses(h, cfg.tau)
    return pairwise_result(losses, weights, h, batch, None)


ALGORITHM = registry.register("algorithm", "ipo")(Algorithm(
    "ipo", ipo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference"))

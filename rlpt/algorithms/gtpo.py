"""GTPO (arXiv:2508.04349): token-level clip with entropy-shaped token advantages (rlpt.advantages
"gtpo", shared with GRPO-S), token_mean, no KL."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import clip_objective, resolve


DEFAULTS = dict(advantage="gtpo", eps_high=0.28, loss_agg="token_mean", alpha1=1.0, alpha2=0.1,
                entropy_shaping_norm="separate")
DYNAMIC = frozenset(['alpha1', 'alpha2'])


@registry.register("loss", "gtpo")
def gtpo_loss(batch, cfg):
    """GTPO (arXiv:2508.04349) [2nd]: token-level clip (eps 0.2/0.28) with the entropy-shaped
    token advantages of advantage "gtpo", token_mean, no KL."""
    return clip_objective(batch, resolve(cfg, "gtpo", DEFAULTS))



ALGORITHM = registry.register("algorithm", "gtpo")(Algorithm(
    "gtpo", gtpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

"""GSPO-token (arXiv:2507.18071): GSPO's sequence ratio as a per-token weight, so per-token
advantages can differ (rlpt.losses.policy.gspo_token_objective)."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import gspo_token_objective, resolve


DEFAULTS = dict(eps_low=3e-4, eps_high=4e-4, log_ratio_clamp=10.0)
DYNAMIC = frozenset()


@registry.register("loss", "gspo_token")
def gspo_token_loss(batch, cfg):
    """GSPO-token (arXiv:2507.18071): `log s_{i,t} = logp_t - sg(logp_t) + sg(log s_i)` (value s_i,
    gradient s_i grad logp_t), clipped per token with per-token advantages, seq_mean_token_mean.
    With A_{i,t} = A_i its value and gradient equal GSPO's."""
    return gspo_token_objective(batch, resolve(cfg, "gspo_token", DEFAULTS))



ALGORITHM = registry.register("algorithm", "gspo_token")(Algorithm(
    "gspo_token", gspo_token_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

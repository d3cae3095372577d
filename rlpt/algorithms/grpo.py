"""GRPO (DeepSeekMath, arXiv:2402.03300): the clipped surrogate with group z-score advantages and
the k3 KL inside the token mean (rlpt.losses.policy.clip_objective); beta 0.04, eps 0.2, G 64."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import clip_objective, resolve


DEFAULTS = dict(beta=0.04, group_size=64)
DYNAMIC = frozenset()


@registry.register("loss", "grpo")
def grpo_loss(batch, cfg):
    """GRPO (DeepSeekMath, arXiv:2402.03300 eq. 3): per token
    `max(-A r, -A clip(r, 1-eps, 1+eps)) + beta * k3(logp, ref_logp)`, aggregated
    seq_mean_token_mean; beta=0.04, eps=0.2, G=64. At r=1 the per-token gradient of J w.r.t. logp
    is `(1/(G |o_i|)) (A_i + beta (exp(ref - logp) - 1))`."""
    return clip_objective(batch, resolve(cfg, "grpo", DEFAULTS))



ALGORITHM = registry.register("algorithm", "grpo")(Algorithm(
    "grpo", grpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

"""Dr. GRPO (arXiv:2503.20783): GRPO without the length and std normalisations: advantage
`r - mean` (rlpt.advantages "dr_grpo"), aggregation seq_mean_token_sum_norm, no KL."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import clip_objective, resolve


DEFAULTS = dict(advantage="dr_grpo", loss_agg="seq_mean_token_sum_norm")
DYNAMIC = frozenset()


@registry.register("loss", "dr_grpo")
def dr_grpo_loss(batch, cfg):
    """Dr. GRPO (arXiv:2503.20783): GRPO's clipped surrogate with A = r - mean (advantage
    "dr_grpo"), no 1/|o| (aggregation seq_mean_token_sum_norm: sum / (N * L_norm), L_norm = T by
    default), beta=0. At r=1, d loss / d logp_{i,t} = -A_i / (N L_norm) for every token."""
    return clip_objective(batch, resolve(cfg, "dr_grpo", DEFAULTS))



ALGORITHM = registry.register("algorithm", "dr_grpo")(Algorithm(
    "dr_grpo", dr_grpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

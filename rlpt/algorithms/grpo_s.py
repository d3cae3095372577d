"""GRPO-S (arXiv:2508.04349): sequence-level entropy-shaped advantages (rlpt.advantages
"grpo_s", shared with GTPO)."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import clip_objective, gspo_token_objective, resolve


DEFAULTS = dict(advantage="grpo_s", eps_high=0.28, loss_agg="token_mean", alpha1=1.0, alpha2=0.1,
                entropy_shaping_norm="separate", ratio_level="token")
DYNAMIC = frozenset(['alpha1', 'alpha2'])


@registry.register("loss", "grpo_s")
def grpo_s_loss(batch, cfg):
    """GRPO-S (arXiv:2508.04349) [2nd]: sequence-level entropy-shaped advantages (advantage
    "grpo_s"). Implemented reading: the same token-level clip as GTPO (`ratio_level="token"`,
    eps 0.2/0.28, token_mean); alternative `ratio_level="sequence"` uses the GSPO-token
    sequence ratio with the same eps."""
    c = resolve(cfg, "grpo_s", DEFAULTS)
    if c.ratio_level == "token":
        return clip_objective(batch, c)
    if c.ratio_level == "sequence":
        return gspo_token_objective(batch, c)
    raise ValueError(f"grpo_s ratio_level must be 'token' or 'sequence', got {c.ratio_level!r}")



ALGORITHM = registry.register("algorithm", "grpo_s")(Algorithm(
    "grpo_s", grpo_s_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

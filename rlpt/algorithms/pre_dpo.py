"""Pre-DPO (arXiv 2504.15843): DPO whose reference is a *guide* model.

Procedure: (1) train a guide with DPO (or SimPO) starting from the SFT model (the phase "guide",
`algo.guide_loss`, `algo.guide_steps` steps, -1 = `pref.steps`; a DPO guide uses the run's
beta); (2) restart from the SFT model and run DPO on the same data with `ref := guide`. The
guide is the frozen "reference" of stage (2) (the `models` hook), its log-probs enter the loss
as `guide_w, guide_l` (the `ref_keys` hook), so the per-pair weight becomes
`sigmoid(-beta h_guide)`: pairs the guide already separates well get small weight. With guide ==
SFT it is exactly DPO.
"""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.algorithms.dpo import dpo_loss
from rlpt.errors import UserError
from rlpt.losses.preference import resolve_config

DEFAULTS = dict(beta=0.1, guide_loss="dpo", guide_steps=-1)
DYNAMIC = frozenset({"beta"})
GUIDE_LOSSES = ("dpo", "simpo")


@registry.register("loss", "pre_dpo")
def pre_dpo_loss(batch, cfg):
    """Stage (2) of Pre-DPO (module doc): DPO with `guide_w, guide_l` (the guide's sequence
    log-probs) in place of `ref_w, ref_l`."""
    for key in ("guide_w", "guide_l"):
        if key not in batch:
            raise KeyError(f"pre_dpo needs batch[{key!r}] (guide-model sequence log-probs)")
    guided = dict(batch, ref_w=batch["guide_w"], ref_l=batch["guide_l"])
    return dpo_loss(guided, resolve_config(cfg, DEFAULTS, "pre_dpo"))


def guide_config(cfg, trainer):
    """The guide's algorithm config: `algo.guide_loss`'s defaults (a DPO guide: the run's beta)."""
    a = resolve_config(cfg.algo, DEFAULTS)
    g = trainer.algo_config(a.guide_loss)
    if a.guide_loss == "dpo":
        g.beta = a.beta
    return g


def train_guide(cfg, trainer):
    """Stage (1): the guide, trained from the SFT model, is the reference of stage (2)."""
    a = resolve_config(cfg.algo, DEFAULTS)
    steps = cfg.pref.steps if a.guide_steps < 0 else a.guide_steps
    return {"reference": trainer.train_pairs("guide", guide_config(cfg, trainer), steps)}


def validate(cfg):
    a = resolve_config(cfg.algo, DEFAULTS)
    if a.guide_loss not in GUIDE_LOSSES:
        raise UserError(f"config algo.guide_loss: {a.guide_loss!r}; expected 'dpo' or 'simpo'")


ALGORITHM = registry.register("algorithm", "pre_dpo")(Algorithm(
    "pre_dpo", pre_dpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference",
    validate=validate,
    trainer_hooks=dict(ref_keys=lambda c: ("guide_w", "guide_l"), models=train_guide)))

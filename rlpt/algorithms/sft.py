"""Supervised fine-tuning inside the RL loop as an algorithm of the fused step: token-mean NLL
(minus `entropy_coef` * entropy, 0 by default).

`sft_source="gold"` trains on the task's gold solutions (temperature 1);
`"correct_samples"` on the step's own correct samples (rejection-sampling fine-tuning).
"""
from rlpt import registry
from rlpt.algorithms.base import Algorithm, correct_of, gold_logprobs, solution_rows
from rlpt.errors import UserError
from rlpt.logprobs import completion_logprobs
from rlpt.losses.aggregation import completion_mask
from rlpt.losses.policy import resolve
from rlpt.losses.supervised import nll_minus_entropy

SOURCES = ("gold", "correct_samples")
DEFAULTS = dict(loss_agg="token_mean", sft_source="gold")


@registry.register("loss", "sft")
def sft_loss(batch, cfg):
    """Plain SFT: `loss = aggregate(-logp) - entropy_coef * aggregate(entropy)` over `mask`
    (cfg: loss_agg default token_mean, entropy_coef default 0)."""
    c = resolve(cfg, "sft", DEFAULTS)
    return nll_minus_entropy(batch["logp"], completion_mask(batch), batch.get("entropy"),
                             c.entropy_coef, c.loss_agg, c.l_norm)


def validate(cfg):
    if cfg.algo.get("sft_source", "gold") not in SOURCES:
        raise UserError(f"config algo.sft_source: {cfg.algo.sft_source!r}; expected one of "
                        f"{list(SOURCES)}")


def extras(spec, state, batch, out, data, raw_N, c, key):
    if c.get("sft_source", "gold") == "gold":
        return data, solution_rows(batch), {}
    return dict(data, sft_row_mask=data["mask"] * correct_of(raw_N, c)[:, None]), {}, {}


def loss_batch(spec, params, mb, mbp, c):
    ent_on = spec.needs("entropy")
    if c.get("sft_source", "gold") == "gold":
        logp, ent = gold_logprobs(spec, params, mbp, ent_on)
        lb = {"logp": logp, "mask": mbp["sol_mask"]}
    else:
        width = mb["tokens"].shape[1] - mb["mask"].shape[1]
        logp, ent = completion_logprobs(spec.model_cfg, params, mb["tokens"], mb["valid"], width,
                                        1.0, with_entropy=ent_on)
        lb = {"logp": logp, "mask": mb["sft_row_mask"]}
    if ent_on:
        lb["entropy"] = ent
    return lb


ALGORITHM = registry.register("algorithm", "sft")(Algorithm(
    "sft", sft_loss, defaults=DEFAULTS, validate=validate, extras=extras, loss_batch=loss_batch))

"""Supervised fine-tuning inside the RL loop: `sft` (token-mean NLL) and ReLIFT's `relift_sft`
(NLL - entropy_coef * entropy, arXiv:2506.07527) as algorithms of the fused step.

`sft_source="gold"` trains on the task's gold solutions (temperature 1);
`"correct_samples"` on the step's own correct samples (rejection-sampling fine-tuning).
"""

from rlpt import registry
from rlpt.algorithms.base import Algorithm, gold_logprobs, solution_rows
from rlpt.algorithms.shaping import correct_of
from rlpt.logprobs import completion_logprobs
from rlpt.losses.policy import relift_sft_loss
from rlpt.losses.supervised import sft_loss

SOURCES = ("gold", "correct_samples")


def validate(cfg):
    if cfg.algo.get("sft_source", "gold") not in SOURCES:
        raise ValueError(f"config algo.sft_source: {cfg.algo.sft_source!r}; expected one of "
                         f"{list(SOURCES)}")


def extras(spec, state, batch, out, data, raw_N, c, key):
    if c.get("sft_source", "gold") == "gold":
        return data, solution_rows(batch), {}
    return dict(data, sft_row_mask=data["mask"] * correct_of(raw_N, c)[:, None]), {}, {}


def loss_batch(spec, params, mb, mbp, c):
    ent_on = spec.flag("entropy_term")
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


ALGORITHMS = [Algorithm(name, loss, defaults={"sft_source": "gold"}, validate=validate,
                        extras=extras, loss_batch=loss_batch)
              for name, loss in (("sft", sft_loss), ("relift_sft", relift_sft_loss))]
for _a in ALGORITHMS:
    registry.register("algorithm", _a.name)(_a)

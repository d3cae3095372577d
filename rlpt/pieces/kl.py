"""The KL term's inputs: a frozen copy of the initial policy as `frozen["reference"]` and its
log-probs of the sampled tokens as `data["ref_logp"]`; the loss adds `beta * KL` (rlpt.losses.
policy.add_kl_and_entropy, estimators in rlpt.losses.kl).

Whether the term exists is the static `algo.kl_term`; left at None, `validate` sets it from the
coefficients (`beta`, PPO's `kl_coef`), so a zero coefficient costs no reference forward.

With LoRA (`cfg.lora.rank > 0`) the reference is the frozen base with the adapters off,
`frozen["base"]`, already in the state: no copy is made (rlpt.state.reference_params)."""
from rlpt import registry
from rlpt.algorithms.base import Piece, rollout_logprobs
from rlpt.errors import UserError
from rlpt.models import lora
from rlpt.state import frozen_copy, reference_params


def resolve_term_flag(cfg, flag: str, coefs) -> None:
    """`algo.<flag>` None -> whether any of `coefs` is non-zero; False with a non-zero
    coefficient is refused (the term would silently vanish)."""
    a = cfg.algo
    nonzero = [k for k in coefs if float(a.get(k, 0.0) or 0.0) != 0.0]
    if a.get(flag) is None:
        a[flag] = bool(nonzero)
    elif not a[flag] and nonzero:
        raise UserError(f"config algo.{flag}: False, but algo.{nonzero[0]}={a[nonzero[0]]} is "
                        f"non-zero: set algo.{flag}=True to keep the term (or the coefficient "
                        "to 0)")


def validate(cfg):
    resolve_term_flag(cfg, "kl_term", ("beta", "kl_coef"))


def frozen_models(cfg, model_cfg, params):
    if lora.enabled(cfg):   # the reference is the LoRA base (module doc)
        return {}
    return {"reference": (model_cfg, frozen_copy(params))}


def before_advantages(spec, state, batch, out, data, c):
    width = data["tokens"].shape[1] - data["mask"].shape[1]
    ref = rollout_logprobs(spec, reference_params(state.frozen), data["tokens"], data["valid"],
                           width)
    return dict(data, ref_logp=ref), {}, {}


PIECE = registry.register("piece", "kl")(Piece(
    "kl", active=lambda a: bool(a.get("kl_term")), validate=validate,
    frozen_models=frozen_models, before_advantages=before_advantages))

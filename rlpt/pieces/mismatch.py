"""Corrections for the sampler / trainer mismatch (rlpt.losses.mismatch), for any token-level
policy-gradient algorithm, as three composable pieces, each off by default:

    tis      truncated importance sampling: weight `min(r, algo.tis_cap)` (Yao, Liu et al.,
             "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training", 2025,
             fengyao.notion.site; verl / TRL; paper cap C = 2)
    icepop   masked importance sampling: weight 0 for a token whose ratio lies outside
             [algo.mis_low, algo.mis_high], else 1 (IcePop, Ling team, Ring-1T, arXiv:2510.18855:
             [0.5, 2])
    seq_mis  geometric sequence-level masking: weight 0 for every token of a sequence whose
             geometric-mean ratio `exp(mask-mean_t log r)` lies outside [algo.seq_mis_low,
             algo.seq_mis_high], else 1 (Liu, Li et al., "When Speed Kills Stability:
             Demystifying RL Collapse from the Training-Inference Mismatch", 2025; verl's
             geometric rejection sampling, band 1/1.001 .. 1.001)

with `r = pi_trainer_old(y_t) / pi_sampler(y_t) = exp(old_logp - sampler_logp)`: the trainer's
probability of the sampled token under the pre-update params (the loss's `old_logp`) over the
sampler's (`out.logprobs`), a stop-gradient constant. Each piece's `token_weight` hook returns
its weight; the step multiplies the weights of every active piece (they compose: tis + icepop is
a truncated weight with the out-of-band tokens zeroed) into the loss input `token_weight`, which
the token-level surrogates multiply into the per-token policy-gradient loss
(rlpt.losses.policy.token_weighted).

Normalisation (a choice): the weights multiply the surrogate only; the mask, and so every
aggregation denominator (token count, sequence lengths), the KL and the entropy terms stay as
they are. This is how TIS is written (the weight inside the expectation; verl multiplies
`pg_losses` by it), and IcePop's objective keeps `1/|y_i|` of the whole response while its mask
zeroes tokens; masked tokens and sequences thus shrink the gradient instead of being
renormalised away.

Algorithms whose loss is not a per-token surrogate (sequence-level GSPO and GMPO, Kimi k1.5's
squared loss, the SFT algorithms) or that train rows without sampler log-probs (MGRPO's layer
2) are refused by `validate` (`UNWEIGHTED`); tests/pieces/test_mismatch.py checks that every
other policy-gradient algorithm's loss reads the weight. Metrics (over the mask's tokens):
`tis_truncated_frac` (ratio > cap) and `tis_weight_mean`, `icepop_masked_frac`,
`seq_mis_masked_frac` (share of non-empty sequences masked).
"""
import math

import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Piece
from rlpt.errors import UserError
from rlpt.losses.aggregation import masked_mean
from rlpt.losses.mismatch import band_mask, sequence_band_mask, truncated_is_weight

# algorithm -> why its loss takes no per-token weight of the sampled tokens
UNWEIGHTED = {
    "gspo": "a sequence-level ratio objective",
    "gmpo": "a sequence-level (geometric-mean) ratio objective",
    "kimi_k15": "a squared sequence-level loss, not a surrogate",
    "sft": "supervised, not a policy gradient of the sampled tokens",
    "relift_sft": "supervised, not a policy gradient of the sampled tokens",
    "mgrpo": "its layer-2 rows have no sampler log-probs in the loss inputs",
}


def log_ratio(lb):
    """Stop-gradient `old_logp - sampler_logp` of the loss inputs `lb` [N, T]."""
    if "sampler_logp" not in lb or "old_logp" not in lb:
        raise KeyError("the mismatch corrections need lb['old_logp'] and lb['sampler_logp'] "
                       "(rlpt.algorithms.base.policy_loss_batch)")
    return jax.lax.stop_gradient(lb["old_logp"] - lb["sampler_logp"])


def _number(a, key):
    v = a.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"config algo.{key}: {v!r} must be a finite number")
    return float(v)


def _supported(cfg, switch):
    name = cfg.algo.name
    if name in UNWEIGHTED:
        raise UserError(f"config algo.{switch}: algorithm {name!r} takes no per-token weight "
                        f"({UNWEIGHTED[name]}); the mismatch corrections apply to the token-level "
                        "surrogates (grpo, dapo, ppo, cispo, gspo_token, ...)")


def _band(cfg, low_key, high_key):
    a = cfg.algo
    low, high = _number(a, low_key), _number(a, high_key)
    if low >= high:
        raise UserError(f"config algo.{low_key}: {low} must be < algo.{high_key}={high}")
    if not low < 1.0 < high:
        raise UserError(f"config algo.{low_key}/{high_key}: the band [{low}, {high}] must hold "
                        "ratio 1 strictly inside (low < 1 < high), else on-policy tokens are "
                        "masked")


def validate_tis(cfg):
    if not cfg.algo.get("tis"):
        return
    _supported(cfg, "tis")
    if _number(cfg.algo, "tis_cap") <= 0:
        raise UserError(f"config algo.tis_cap: {cfg.algo.tis_cap} must be > 0 (the truncation "
                        "C of min(ratio, C); the paper's is 2)")


def validate_icepop(cfg):
    if cfg.algo.get("icepop"):
        _supported(cfg, "icepop")
        _band(cfg, "mis_low", "mis_high")


def validate_seq_mis(cfg):
    if cfg.algo.get("seq_mis"):
        _supported(cfg, "seq_mis")
        _band(cfg, "seq_mis_low", "seq_mis_high")


def tis_weight(spec, lb, c):
    d, m = log_ratio(lb), lb["mask"]
    w = truncated_is_weight(d, c.tis_cap)
    return w, {"tis_truncated_frac": masked_mean((jnp.exp(d) > c.tis_cap).astype(jnp.float32), m),
               "tis_weight_mean": masked_mean(w, m)}


def icepop_weight(spec, lb, c):
    w = band_mask(log_ratio(lb), c.mis_low, c.mis_high)
    return w, {"icepop_masked_frac": masked_mean(1.0 - w, lb["mask"])}


def seq_mis_weight(spec, lb, c):
    d, m = log_ratio(lb), lb["mask"]
    keep_N = sequence_band_mask(d, m, c.seq_mis_low, c.seq_mis_high)
    nonempty = (jnp.sum(m, axis=-1) > 0).astype(jnp.float32)
    frac = jnp.sum((1.0 - keep_N) * nonempty) / jnp.maximum(jnp.sum(nonempty), 1.0)
    return jnp.broadcast_to(keep_N[:, None], d.shape), {"seq_mis_masked_frac": frac}


TIS = registry.register("piece", "tis")(Piece(
    "tis", defaults=dict(tis=False, tis_cap=2.0), dynamic=frozenset({"tis_cap"}),
    active=lambda a: bool(a.get("tis")), validate=validate_tis, token_weight=tis_weight))
ICEPOP = registry.register("piece", "icepop")(Piece(
    "icepop", defaults=dict(icepop=False, mis_low=0.5, mis_high=2.0),
    dynamic=frozenset({"mis_low", "mis_high"}), active=lambda a: bool(a.get("icepop")),
    validate=validate_icepop, token_weight=icepop_weight))
SEQ_MIS = registry.register("piece", "seq_mis")(Piece(
    "seq_mis", defaults=dict(seq_mis=False, seq_mis_low=1.0 / 1.001, seq_mis_high=1.001),
    dynamic=frozenset({"seq_mis_low", "seq_mis_high"}), active=lambda a: bool(a.get("seq_mis")),
    validate=validate_seq_mis, token_weight=seq_mis_weight))

"""Policy-gradient loss pieces shared by several algorithms (spec: objectives.md §3): the
clipped surrogate, the sequence-ratio objective of GSPO-token / GRPO-S, the KL and entropy terms,
and the shared defaults every policy-gradient algorithm starts from. Each algorithm's own loss
lives in its file, rlpt/algorithms/<name>.py, and calls these.

Losses have the signature `loss_fn(batch, cfg) -> (loss_scalar, metrics)` and are `-J`
(objectives are maximised). Batch keys (jnp arrays):
  logp, old_logp [N,T]   current / behaviour-policy log-probs of the sampled tokens
  ref_logp [N,T]         reference log-probs (needed only when the KL term exists; else
                         optional, for the `kl` metric)
  advantages [N,T] | [N] per-token or per-sequence advantages (an [N] array is broadcast)
  mask [N,T]             float 0/1 completion mask
  keep [N]               optional dynamic-sampling keep mask (multiplies the mask, every loss)
  token_weight [N,T]     optional stop-gradient per-token weight of the policy-gradient term
                         (the sampler/trainer mismatch corrections, rlpt.pieces.mismatch): the
                         token-level surrogates (`clip_objective`, `gspo_token_objective`,
                         CISPO) multiply their per-token surrogate by it before aggregating; the
                         mask, and so every normaliser, the KL and the entropy terms are unchanged
  sampler_logp [N,T]     optional: the sampler's log-probs of the tokens (what the weights read)
  entropy [N,T]          optional; required when the entropy term exists
  rewards [N], step      what some algorithms read (Kimi k1.5, KDRL, annealing schedules)

Temperature: all log-probs (current, old, reference, teacher) are assumed already computed from
`logits / tau`, tau the sampling temperature, so the behaviour policy in the ratio is the
distribution actually sampled from; top-k/top-p truncation is not applied to training log-probs.

Clipped surrogates use the min/max form, so gradient flows only through the active branch.
Metrics always include `loss`, `clip_frac`, `ratio_mean`, and `kl` when `ref_logp` is given.
"""
import types

import jax
import jax.numpy as jnp

from rlpt.losses.aggregation import aggregate, completion_mask, masked_mean
from rlpt.losses.kl import kl
from rlpt.losses.supervised import entropy_bonus

# The defaults every policy-gradient algorithm starts from; an algorithm's DEFAULTS override
# them (values "not in spec" are this codebase's choice).
SURROGATE_DEFAULTS = dict(
    # clipped surrogate
    eps_low=0.2,              # ratio >= 1 - eps_low
    eps_high=0.2,             # ratio <= 1 + eps_high
    dual_clip=None,           # c for the A<0 dual clip (verl clip_ratio_c); None = off
    log_ratio_clamp=20.0,     # verl clamps logp - old_logp to [-20, 20] before exp
    # KL to the reference policy, inside the loss
    beta=0.0,
    kl_estimator="k3",        # k1 | k2 | k3 (aliases kl, mse, low_var_kl)
    kl_clamp=False,           # verl's k3 clamp (d in [-20, 20], k3 <= 10)
    # aggregation
    loss_agg="seq_mean_token_mean",
    l_norm=None,              # seq_mean_token_sum_norm constant; None = T (max new tokens)
    entropy_coef=0.0,         # loss -= entropy_coef * aggregate(entropy)
    # advantages: `advantage` names the ("advantage", name) registry entry whose output the
    # step puts in batch["advantages"]; the fields below are read by those estimators
    advantage="grpo",
    group_size=8,
    ddof=1,
    eps=1e-6,
    success_threshold=0.0,    # a sample counts as correct/successful when reward > this
    # whether the KL / entropy terms exist (static; None = decided from beta / entropy_coef
    # by the pieces' validate (rlpt.pieces.kl, .entropy), or by the loss for a plain config)
    kl_term=None,
    entropy_term=None,
)
# Which of them are dynamic hyperparameters (arguments of the compiled step, vmappable).
SURROGATE_DYNAMIC = frozenset({"eps_low", "eps_high", "dual_clip", "log_ratio_clamp", "beta",
                               "l_norm", "entropy_coef", "eps", "success_threshold"})


def _items(cfg):
    if cfg is None:
        return {}
    if hasattr(cfg, "items"):
        return dict(cfg.items())
    return {k: v for k, v in vars(cfg).items() if not k.startswith("_")}


def resolve(cfg, name: str, defaults=None) -> types.SimpleNamespace:
    """The shared defaults, an algorithm's `defaults` and `name`, overlaid with the fields `cfg`
    sets (a ConfigDict, an AlgoConfig, a dict or any attribute object; None = all defaults), as a
    plain attribute object: a config may set only the fields it changes."""
    fields = dict(SURROGATE_DEFAULTS, name=name, **dict(defaults or {}))
    fields.update(_items(cfg))
    return types.SimpleNamespace(**fields)


def clipped_pg_token_loss(logp_NT, old_logp_NT, adv_NT, eps_low, eps_high, dual_clip=None,
                          log_ratio_clamp=20.0):
    """PPO clip (arXiv:1707.06347) per token: `max(-A r, -A clip(r, 1-eps_low, 1+eps_high))`;
    with `dual_clip=c` (arXiv:1912.09729, verl clip_ratio_c) the A<0 loss is capped at `-A c`.
    Returns `(loss_NT, ratio_NT, clipped_NT, dual_clipped_NT)` (bool masks of binding clips)."""
    log_ratio = logp_NT - old_logp_NT
    if log_ratio_clamp is not None:
        log_ratio = jnp.clip(log_ratio, -log_ratio_clamp, log_ratio_clamp)
    ratio = jnp.exp(log_ratio)
    unclipped = -adv_NT * ratio
    clipped = -adv_NT * jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = jnp.maximum(unclipped, clipped)
    dual = jnp.zeros_like(loss, dtype=bool)
    if dual_clip is not None:
        cap = -adv_NT * dual_clip
        dual = (adv_NT < 0) & (cap < loss)
        loss = jnp.where(adv_NT < 0, jnp.minimum(loss, cap), loss)
    return loss, ratio, clipped > unclipped, dual


def clipped_value_token_loss(values_NT, old_values_NT, returns_NT, clip):
    """PPO clipped value loss per token: `max((V - R)^2, (V_old + clip(V - V_old, +-c) - R)^2)`.
    Returns `(loss_NT, clipped_NT)`; the caller applies the 0.5 factor and aggregation."""
    v_clipped = old_values_NT + jnp.clip(values_NT - old_values_NT, -clip, clip)
    l1 = jnp.square(values_NT - returns_NT)
    l2 = jnp.square(v_clipped - returns_NT)
    return jnp.maximum(l1, l2), l2 > l1


def token_advantages(adv, mask_NT):
    return adv[:, None] * mask_NT if adv.ndim == 1 else adv


def sequence_advantages(adv, mask_NT):
    return adv if adv.ndim == 1 else masked_mean(adv, mask_NT, axis=-1)


def nonempty_mean(x_N, mask_NT):
    w_N = (jnp.sum(mask_NT, axis=-1) > 0).astype(x_N.dtype)
    return jnp.sum(x_N * w_N) / jnp.maximum(jnp.sum(w_N), 1.0)


def term_on(c, flag: str, coef: str) -> bool:
    """Whether a loss term exists: the static config flag `flag` (kl_term, entropy_term) when
    set, else (a plain config of Python numbers, as in unit tests) whether `coef` is non-zero."""
    on = getattr(c, flag, None)
    return bool(getattr(c, coef)) if on is None else bool(on)


def kl_tokens(batch, c):
    if "ref_logp" not in batch:
        if term_on(c, "kl_term", "beta"):
            raise KeyError(f"{c.name}: beta={c.beta} > 0 needs batch['ref_logp']")
        return None
    return kl(batch["logp"], batch["ref_logp"], c.kl_estimator, c.kl_clamp)


def sub_entropy(loss, batch, c, mask_NT, metrics):
    """`loss - entropy_coef * aggregate(entropy)` when `batch["entropy"]` is given."""
    if "entropy" in batch:
        ent = entropy_bonus(batch["entropy"], mask_NT, c.loss_agg, c.l_norm)
        metrics["entropy"] = ent
        return loss - c.entropy_coef * ent
    if term_on(c, "entropy_term", "entropy_coef"):
        raise KeyError(f"{c.name}: entropy_coef={c.entropy_coef} > 0 needs batch['entropy']")
    return loss


def add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics):
    """For sequence-level objectives (GSPO, GMPO): `loss + beta * aggregate(KL)` (KL outside the
    sequence ratio) minus the entropy bonus; returns (loss, metrics)."""
    kl_NT = kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
        loss = loss + c.beta * aggregate(kl_NT, mask_NT, c.loss_agg, c.l_norm)
    metrics["loss"] = loss = sub_entropy(loss, batch, c, mask_NT, metrics)
    return loss, metrics


def add_kl_and_entropy(tok_loss_NT, batch, c, mask_NT, metrics):
    """Adds `beta * KL` per token (inside the aggregation, GRPO style), aggregates by
    `c.loss_agg`, subtracts `entropy_coef * entropy`. Returns the scalar loss."""
    kl_NT = kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
        if term_on(c, "kl_term", "beta"):
            tok_loss_NT = tok_loss_NT + c.beta * kl_NT
    loss = aggregate(tok_loss_NT, mask_NT, c.loss_agg, c.l_norm)
    loss = sub_entropy(loss, batch, c, mask_NT, metrics)
    metrics["loss"] = loss
    return loss


def token_weighted(pg_NT, batch):
    """The per-token policy-gradient loss times `batch["token_weight"]` when the batch has one
    (module doc: the normalisers stay those of the mask), else `pg_NT` itself."""
    if "token_weight" not in batch:
        return pg_NT
    return pg_NT * jax.lax.stop_gradient(batch["token_weight"]).astype(pg_NT.dtype)


def clip_objective(batch, c, extra_token_loss_NT=None):
    """Token-level clipped surrogate + beta*KL + optional extra per-token term, aggregated by
    `c.loss_agg`, minus the entropy bonus. The shared core of PPO/GRPO/Dr.GRPO/DAPO/GTPO/...
    `c` is a resolved config (see defaults.resolve)."""
    mask_NT = completion_mask(batch)
    adv_NT = token_advantages(batch["advantages"], mask_NT)
    pg_NT, ratio_NT, clipped_NT, dual_NT = clipped_pg_token_loss(
        batch["logp"], batch["old_logp"], adv_NT, c.eps_low, c.eps_high, c.dual_clip,
        c.log_ratio_clamp)
    pg_NT = token_weighted(pg_NT, batch)
    metrics = {
        "pg_loss": aggregate(pg_NT, mask_NT, c.loss_agg, c.l_norm),
        "clip_frac": masked_mean(clipped_NT.astype(pg_NT.dtype), mask_NT),
        "ratio_mean": masked_mean(ratio_NT, mask_NT),
    }
    if c.dual_clip is not None:
        metrics["dual_clip_frac"] = masked_mean(dual_NT.astype(pg_NT.dtype), mask_NT)
    tok_loss_NT = pg_NT if extra_token_loss_NT is None else pg_NT + extra_token_loss_NT
    return add_kl_and_entropy(tok_loss_NT, batch, c, mask_NT, metrics), metrics


def sequence_log_ratio(logp_NT, old_logp_NT, mask_NT):
    return masked_mean(logp_NT - old_logp_NT, mask_NT, axis=-1)


def gspo_token_objective(batch, c):
    mask_NT = completion_mask(batch)
    logp_NT = batch["logp"]
    seq_lr_N = jax.lax.stop_gradient(sequence_log_ratio(logp_NT, batch["old_logp"], mask_NT))
    log_s_NT = logp_NT - jax.lax.stop_gradient(logp_NT) + seq_lr_N[:, None]
    s_NT = jnp.exp(jnp.minimum(log_s_NT, c.log_ratio_clamp))
    adv_NT = token_advantages(batch["advantages"], mask_NT)
    unclipped = -adv_NT * s_NT
    clipped = -adv_NT * jnp.clip(s_NT, 1.0 - c.eps_low, 1.0 + c.eps_high)
    pg_NT = token_weighted(jnp.maximum(unclipped, clipped), batch)
    metrics = {"pg_loss": aggregate(pg_NT, mask_NT, c.loss_agg, c.l_norm),
               "clip_frac": masked_mean((clipped > unclipped).astype(pg_NT.dtype), mask_NT),
               "ratio_mean": masked_mean(s_NT, mask_NT)}
    return add_kl_and_entropy(pg_NT, batch, c, mask_NT, metrics), metrics


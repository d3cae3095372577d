"""Policy-gradient losses as pure functions of arrays (spec: objectives.md §3).

Every loss is registered as `("loss", name)` with the signature `loss_fn(batch, cfg) ->
(loss_scalar, metrics)`; `cfg` fields not set fall back to `default_algo_config(name)`.
Losses are `-J` (objectives are maximised).

Batch keys (jnp arrays):
  logp, old_logp [N,T]   current / behaviour-policy log-probs of the sampled tokens
  ref_logp [N,T]         reference log-probs (needed only when cfg.beta > 0; else optional, for the
                         `kl` metric)
  advantages [N,T] | [N] per-token or per-sequence advantages (an [N] array is broadcast)
  mask [N,T]             float 0/1 completion mask
  keep [N]               optional dynamic-sampling keep mask (multiplies the mask, every loss)
  entropy [N,T]          optional; required when cfg.entropy_coef > 0
  values, old_values, returns [N,T]   PPO value head
  teacher_logp [N,T]     KDRL teacher log-probs on the student's samples
  rewards [N]            Kimi k1.5, KDRL reward-guided masking
  step                   scalar int (annealing: KDRL beta_t, ExP-GRPO coefficient)
  sft_logp, sft_mask [M,T2]   second token set: ExP-GRPO self-explanations, UFT hint tokens
  layer2_<key>           MGRPO layer-2 batch (same keys as above, prefixed)

Temperature: all log-probs (current, old, reference, teacher) are assumed already computed from
`logits / tau`, tau the sampling temperature, so the behaviour policy in the ratio is the
distribution actually sampled from; top-k/top-p truncation is not applied to training log-probs.

Clipped surrogates use the min/max form, so gradient flows only through the active branch.
Metrics always include `loss`, `clip_frac`, `ratio_mean`, and `kl` when `ref_logp` is given.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from rlpt.losses.aggregation import aggregate, completion_mask, masked_mean
from rlpt.losses.defaults import resolve
from rlpt.losses.kl import kl, kl_k2
from rlpt.losses.supervised import entropy_bonus, nll_minus_entropy, sft_nll
from rlpt.registry import register


# ---------------------------------------------------------------------------------- building blocks

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


def _tokens(adv, mask_NT):
    return adv[:, None] * mask_NT if adv.ndim == 1 else adv


def _seq_adv(adv, mask_NT):
    return adv if adv.ndim == 1 else masked_mean(adv, mask_NT, axis=-1)


def _nonempty_mean(x_N, mask_NT):
    w_N = (jnp.sum(mask_NT, axis=-1) > 0).astype(x_N.dtype)
    return jnp.sum(x_N * w_N) / jnp.maximum(jnp.sum(w_N), 1.0)


def term_on(c, flag: str, coef: str) -> bool:
    """Whether a loss term exists: the static config flag `flag` (kl_term, entropy_term) when
    set, else (a plain config of Python numbers, as in unit tests) whether `coef` is non-zero."""
    on = getattr(c, flag, None)
    return bool(getattr(c, coef)) if on is None else bool(on)


def _kl_tokens(batch, c):
    if "ref_logp" not in batch:
        if term_on(c, "kl_term", "beta"):
            raise KeyError(f"{c.name}: beta={c.beta} > 0 needs batch['ref_logp']")
        return None
    return kl(batch["logp"], batch["ref_logp"], c.kl_estimator, c.kl_clamp)


def _sub_entropy(loss, batch, c, mask_NT, metrics):
    """`loss - entropy_coef * aggregate(entropy)` when `batch["entropy"]` is given."""
    if "entropy" in batch:
        ent = entropy_bonus(batch["entropy"], mask_NT, c.loss_agg, c.l_norm)
        metrics["entropy"] = ent
        return loss - c.entropy_coef * ent
    if term_on(c, "entropy_term", "entropy_coef"):
        raise KeyError(f"{c.name}: entropy_coef={c.entropy_coef} > 0 needs batch['entropy']")
    return loss


def _add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics):
    """For sequence-level objectives (GSPO, GMPO): `loss + beta * aggregate(KL)` (KL outside the
    sequence ratio) minus the entropy bonus; returns (loss, metrics)."""
    kl_NT = _kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
        loss = loss + c.beta * aggregate(kl_NT, mask_NT, c.loss_agg, c.l_norm)
    metrics["loss"] = loss = _sub_entropy(loss, batch, c, mask_NT, metrics)
    return loss, metrics


def add_kl_and_entropy(tok_loss_NT, batch, c, mask_NT, metrics):
    """Adds `beta * KL` per token (inside the aggregation, GRPO style), aggregates by
    `c.loss_agg`, subtracts `entropy_coef * entropy`. Returns the scalar loss."""
    kl_NT = _kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
        if term_on(c, "kl_term", "beta"):
            tok_loss_NT = tok_loss_NT + c.beta * kl_NT
    loss = aggregate(tok_loss_NT, mask_NT, c.loss_agg, c.l_norm)
    loss = _sub_entropy(loss, batch, c, mask_NT, metrics)
    metrics["loss"] = loss
    return loss


def clip_objective(batch, c, extra_token_loss_NT=None):
    """Token-level clipped surrogate + beta*KL + optional extra per-token term, aggregated by
    `c.loss_agg`, minus the entropy bonus. The shared core of PPO/GRPO/Dr.GRPO/DAPO/GTPO/...
    `c` is a resolved config (see defaults.resolve)."""
    mask_NT = completion_mask(batch)
    adv_NT = _tokens(batch["advantages"], mask_NT)
    pg_NT, ratio_NT, clipped_NT, dual_NT = clipped_pg_token_loss(
        batch["logp"], batch["old_logp"], adv_NT, c.eps_low, c.eps_high, c.dual_clip,
        c.log_ratio_clamp)
    metrics = {
        "pg_loss": aggregate(pg_NT, mask_NT, c.loss_agg, c.l_norm),
        "clip_frac": masked_mean(clipped_NT.astype(pg_NT.dtype), mask_NT),
        "ratio_mean": masked_mean(ratio_NT, mask_NT),
    }
    if c.dual_clip is not None:
        metrics["dual_clip_frac"] = masked_mean(dual_NT.astype(pg_NT.dtype), mask_NT)
    tok_loss_NT = pg_NT if extra_token_loss_NT is None else pg_NT + extra_token_loss_NT
    return add_kl_and_entropy(tok_loss_NT, batch, c, mask_NT, metrics), metrics


# ------------------------------------------------------------------------- token-level clip family

@register("loss", "ppo")
def ppo_loss(batch, cfg):
    """PPO (arXiv:1707.06347): clipped surrogate (eps 0.2, dual clip c=3 for A<0, verl) with GAE
    advantages, token_mean; plus `vf_coef * 0.5 * aggregate(clipped value loss)` when
    `values/old_values/returns` are in the batch (cliprange_value default 0.2)."""
    c = resolve(cfg, "ppo")
    loss, metrics = clip_objective(batch, c)
    if "values" in batch:
        mask_NT = completion_mask(batch)
        vf_NT, vclip_NT = clipped_value_token_loss(batch["values"], batch["old_values"],
                                                   batch["returns"], c.cliprange_value)
        vf = 0.5 * aggregate(vf_NT, mask_NT, c.loss_agg, c.l_norm)
        loss = loss + c.vf_coef * vf
        metrics.update(vf_loss=vf, vf_clip_frac=masked_mean(vclip_NT.astype(vf.dtype), mask_NT),
                       loss=loss)
    return loss, metrics


@register("loss", "grpo")
def grpo_loss(batch, cfg):
    """GRPO (DeepSeekMath, arXiv:2402.03300 eq. 3): per token
    `max(-A r, -A clip(r, 1-eps, 1+eps)) + beta * k3(logp, ref_logp)`, aggregated
    seq_mean_token_mean; beta=0.04, eps=0.2, G=64. At r=1 the per-token gradient of J w.r.t. logp
    is `(1/(G |o_i|)) (A_i + beta (exp(ref - logp) - 1))`."""
    return clip_objective(batch, resolve(cfg, "grpo"))


@register("loss", "dr_grpo")
def dr_grpo_loss(batch, cfg):
    """Dr. GRPO (arXiv:2503.20783): GRPO's clipped surrogate with A = r - mean (advantage
    "dr_grpo"), no 1/|o| (aggregation seq_mean_token_sum_norm: sum / (N * L_norm), L_norm = T by
    default), beta=0. At r=1, d loss / d logp_{i,t} = -A_i / (N L_norm) for every token."""
    return clip_objective(batch, resolve(cfg, "dr_grpo"))


@register("loss", "dapo")
def dapo_loss(batch, cfg):
    """DAPO (arXiv:2503.14476): clip-higher (eps_low 0.2, eps_high 0.28), token_mean, no KL;
    `batch["keep"]` (dynamic sampling) removes degenerate groups from the loss. Overlong shaping is
    applied to the rewards (advantage "dapo_overlong"). At r=1, d loss/d logp = -A_i / sum_j |o_j|.
    Metric `effective_groups` = kept sequences / group_size."""
    c = resolve(cfg, "dapo")
    loss, metrics = clip_objective(batch, c)
    keep_N = batch.get("keep", jnp.ones(batch["mask"].shape[:1], batch["mask"].dtype))
    metrics["effective_groups"] = jnp.sum(keep_N) / c.group_size
    return loss, metrics


@register("loss", "gtpo")
def gtpo_loss(batch, cfg):
    """GTPO (arXiv:2508.04349) [2nd]: token-level clip (eps 0.2/0.28) with the entropy-shaped
    token advantages of advantage "gtpo", token_mean, no KL."""
    return clip_objective(batch, resolve(cfg, "gtpo"))


@register("loss", "grpo_s")
def grpo_s_loss(batch, cfg):
    """GRPO-S (arXiv:2508.04349) [2nd]: sequence-level entropy-shaped advantages (advantage
    "grpo_s"). Implemented reading: the same token-level clip as GTPO (`ratio_level="token"`,
    eps 0.2/0.28, token_mean); alternative `ratio_level="sequence"` uses the GSPO-token
    sequence ratio with the same eps."""
    c = resolve(cfg, "grpo_s")
    if c.ratio_level == "token":
        return clip_objective(batch, c)
    if c.ratio_level == "sequence":
        return _gspo_token_objective(batch, c)
    raise ValueError(f"grpo_s ratio_level must be 'token' or 'sequence', got {c.ratio_level!r}")


@register("loss", "one_shot_rlvr")
def one_shot_rlvr_loss(batch, cfg):
    """1-shot RLVR (arXiv:2504.20571): GRPO with k3 KL beta=1e-3 and entropy bonus 1e-3
    (`batch["entropy"]` required), n=8 rollouts at temperature 0.6; token_mean aggregation (the
    verl default the authors ran; configurable via loss_agg)."""
    return clip_objective(batch, resolve(cfg, "one_shot_rlvr"))


def rank_examples_by_accuracy_variance(history):
    """1-shot RLVR example selection: `history [E, S]` per-example training accuracy per step
    (NaN = not recorded). Returns example indices sorted by the variance (ddof=0) of their
    history, largest first (ties keep index order)."""
    var_E = np.nanvar(np.asarray(history, dtype=np.float64), axis=1)
    return np.argsort(-var_E, kind="stable")


# ------------------------------------------------------------------------- sequence-level ratios

def _seq_log_ratio(logp_NT, old_logp_NT, mask_NT):
    return masked_mean(logp_NT - old_logp_NT, mask_NT, axis=-1)


@register("loss", "gspo")
def gspo_loss(batch, cfg):
    """GSPO (arXiv:2507.18071): `s_i = exp(mean_t (logp - old_logp))` over completion tokens
    (log s clamped at 10, verl), `J = mean_i min(s_i A_i, clip(s_i, 1-3e-4, 1+4e-4) A_i)`, no KL.
    Per-token advantages are averaged over the sequence."""
    c = resolve(cfg, "gspo")
    mask_NT = completion_mask(batch)
    A_N = _seq_adv(batch["advantages"], mask_NT)
    log_s_N = jnp.minimum(_seq_log_ratio(batch["logp"], batch["old_logp"], mask_NT),
                          c.log_ratio_clamp)
    s_N = jnp.exp(log_s_N)
    unclipped = -A_N * s_N
    clipped = -A_N * jnp.clip(s_N, 1.0 - c.eps_low, 1.0 + c.eps_high)
    seq_loss_N = jnp.maximum(unclipped, clipped)
    metrics = {"pg_loss": _nonempty_mean(seq_loss_N, mask_NT),
               "clip_frac": _nonempty_mean((clipped > unclipped).astype(s_N.dtype), mask_NT),
               "ratio_mean": _nonempty_mean(s_N, mask_NT)}
    loss = metrics["pg_loss"]
    return _add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics)


def _gspo_token_objective(batch, c):
    mask_NT = completion_mask(batch)
    logp_NT = batch["logp"]
    seq_lr_N = jax.lax.stop_gradient(_seq_log_ratio(logp_NT, batch["old_logp"], mask_NT))
    log_s_NT = logp_NT - jax.lax.stop_gradient(logp_NT) + seq_lr_N[:, None]
    s_NT = jnp.exp(jnp.minimum(log_s_NT, c.log_ratio_clamp))
    adv_NT = _tokens(batch["advantages"], mask_NT)
    unclipped = -adv_NT * s_NT
    clipped = -adv_NT * jnp.clip(s_NT, 1.0 - c.eps_low, 1.0 + c.eps_high)
    pg_NT = jnp.maximum(unclipped, clipped)
    metrics = {"pg_loss": aggregate(pg_NT, mask_NT, c.loss_agg, c.l_norm),
               "clip_frac": masked_mean((clipped > unclipped).astype(pg_NT.dtype), mask_NT),
               "ratio_mean": masked_mean(s_NT, mask_NT)}
    return add_kl_and_entropy(pg_NT, batch, c, mask_NT, metrics), metrics


@register("loss", "gspo_token")
def gspo_token_loss(batch, cfg):
    """GSPO-token (arXiv:2507.18071): `log s_{i,t} = logp_t - sg(logp_t) + sg(log s_i)` (value s_i,
    gradient s_i grad logp_t), clipped per token with per-token advantages, seq_mean_token_mean.
    With A_{i,t} = A_i its value and gradient equal GSPO's."""
    return _gspo_token_objective(batch, resolve(cfg, "gspo_token"))


@register("loss", "gmpo")
def gmpo_loss(batch, cfg):
    """GMPO (arXiv:2507.20673; authors' code / verl geo_mean): per-token `d = logp - old_logp`
    clipped one-sided in log space before the mean (A>0: min(d, eps_high); A<0: max(d, -eps_low)),
    sequence ratio `exp(mean_t clipped d)`, `J = mean_i A_i ratio_i`; eps=0.4, no KL."""
    c = resolve(cfg, "gmpo")
    mask_NT = completion_mask(batch)
    adv_NT = _tokens(batch["advantages"], mask_NT)
    d_NT = batch["logp"] - batch["old_logp"]
    d_clip_NT = jnp.where(adv_NT > 0, jnp.minimum(d_NT, c.eps_high),
                          jnp.where(adv_NT < 0, jnp.maximum(d_NT, -c.eps_low), d_NT))
    ratio_N = jnp.exp(masked_mean(d_clip_NT, mask_NT, axis=-1))
    seq_loss_N = -_seq_adv(batch["advantages"], mask_NT) * ratio_N
    loss = _nonempty_mean(seq_loss_N, mask_NT)
    metrics = {"pg_loss": loss,
               "clip_frac": masked_mean((d_clip_NT != d_NT).astype(d_NT.dtype), mask_NT),
               "ratio_mean": _nonempty_mean(ratio_N, mask_NT)}
    return _add_sequence_kl_and_entropy(loss, batch, c, mask_NT, metrics)


@register("loss", "kimi_k15")
def kimi_k15_loss(batch, cfg):
    """Kimi k1.5 online mirror descent (arXiv:2501.12599 eq. 3 with tau log Z ~ mean reward):
    `L = mean_j (r_j - mean_g r - tau (logpi(y_j) - logpi_old(y_j)))^2`, sequence log-probs summed
    over completion tokens. Its gradient is `2 tau [-(r_j - r_mean) grad logpi
    + (tau/2) grad (log ratio)^2]`; `normalize_2tau=True` divides L by 2 tau so the gradient equals
    the paper's expression exactly. Uses `batch["rewards"]` (length reward already added)."""
    c = resolve(cfg, "kimi_k15")
    mask_NT = completion_mask(batch)
    r_BG = batch["rewards"].reshape(-1, c.group_size)
    centered_N = (r_BG - jnp.mean(r_BG, axis=1, keepdims=True)).reshape(-1)
    log_ratio_NT = batch["logp"] - batch["old_logp"]
    seq_lr_N = jnp.sum(log_ratio_NT * mask_NT, axis=-1)
    loss = _nonempty_mean(jnp.square(centered_N - c.tau * seq_lr_N), mask_NT)
    if c.normalize_2tau:
        loss = loss / (2.0 * c.tau)
    metrics = {"loss": loss, "clip_frac": jnp.zeros_like(loss),
               "ratio_mean": masked_mean(jnp.exp(log_ratio_NT), mask_NT),
               "seq_log_ratio_mean": _nonempty_mean(seq_lr_N, mask_NT)}
    kl_NT = _kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
    metrics["loss"] = loss = _sub_entropy(loss, batch, c, mask_NT, metrics)
    return loss, metrics


# ---------------------------------------------------------------------------- composite losses

def kd_beta(step, beta_init=5e-3, beta_min=1e-3, delta=5e-5):
    """KDRL annealing: `beta_t = max(beta_init - delta * t, beta_min)`."""
    return jnp.maximum(beta_init - delta * jnp.asarray(step), beta_min)


def kd_sequence_mask(rewards_N, group_size, mode, success_threshold=0.0):
    """KDRL reward-guided masking [2nd]: `incorrect_response` (spec default) applies KD only to
    responses that are not correct; `no_correct_in_group` only to prompts with no correct sample;
    `none` everywhere. Returns float [N]."""
    correct_N = rewards_N > success_threshold
    if mode == "none":
        return jnp.ones(rewards_N.shape, jnp.float32)
    if mode == "incorrect_response":
        return (~correct_N).astype(jnp.float32)
    if mode == "no_correct_in_group":
        any_B = jnp.any(correct_N.reshape(-1, group_size), axis=1)
        return jnp.repeat(~any_B, group_size).astype(jnp.float32)
    raise ValueError(f"unknown kd_mask {mode!r}; known: none, incorrect_response, "
                     "no_correct_in_group")


@register("loss", "kdrl")
def kdrl_loss(batch, cfg):
    """KDRL (arXiv:2506.02208) [2nd]: per token `GRPO_clip + beta_t * k2(logp, teacher_logp) *
    kd_mask`, token_mean (the KD term shares the RL term's aggregation); beta_t from `kd_beta`
    (5e-3 -> 1e-3, delta 5e-5 per step, `batch["step"]`); kd_mask from `kd_sequence_mask`
    (cfg.kd_mask, needs `batch["rewards"]` unless "none"). teacher == student gives GRPO exactly."""
    c = resolve(cfg, "kdrl")
    beta_t = kd_beta(batch.get("step", 0), c.kd_beta_init, c.kd_beta_min, c.kd_beta_delta)
    if c.kd_mask == "none":
        kd_N = jnp.ones(batch["logp"].shape[:1], batch["logp"].dtype)
    else:
        kd_N = kd_sequence_mask(batch["rewards"], c.group_size, c.kd_mask, c.success_threshold)
    k2_NT = kl_k2(batch["logp"], batch["teacher_logp"])
    kd_NT = kd_N[:, None].astype(k2_NT.dtype) * k2_NT
    loss, metrics = clip_objective(batch, c, beta_t * kd_NT)
    mask_NT = completion_mask(batch)
    metrics.update(kd_beta=beta_t, kd_k2=masked_mean(k2_NT, mask_NT * kd_N[:, None]),
                   kd_frac=masked_mean(jnp.broadcast_to(kd_N[:, None], mask_NT.shape), mask_NT))
    return loss, metrics


@register("loss", "exp_grpo")
def exp_grpo_loss(batch, cfg):
    """ExP-GRPO / ExPO (arXiv:2507.02834) [2nd]: `J = J_GRPO + beta * mean log pi(c~, a* | q)` on
    self-explanations (`sft_logp`, `sft_mask`: log-probs scored without the answer in context).
    Implemented reading: the sequence log-likelihood (sum over tokens) averaged over explanations
    (`sft_loss_agg="seq_mean_token_sum"`; alternative "token_mean"). beta = cfg.sft_coef, linearly
    annealed to 0 over `sft_anneal_steps` (0 = constant)."""
    c = resolve(cfg, "exp_grpo")
    loss_rl, metrics = clip_objective(batch, c)
    loglik = -sft_nll(batch["sft_logp"], batch["sft_mask"], c.sft_loss_agg)
    coef = c.sft_coef * jnp.ones_like(loglik)
    if c.sft_anneal_steps:
        frac = jnp.asarray(batch.get("step", 0)) / c.sft_anneal_steps
        coef = coef * jnp.clip(1.0 - frac, 0.0, 1.0)
    loss = loss_rl - coef * loglik
    metrics.update(rl_loss=loss_rl, expl_loglik=loglik, sft_coef=coef, loss=loss)
    return loss, metrics


@register("loss", "mgrpo")
def mgrpo_loss(batch, cfg):
    """MGRPO (multi-layer GRPO, arXiv:2506.04746) [2nd]: GRPO loss on layer 1 (the usual keys) +
    `layer2_coef` (1.0 = the spec's plain sum) * GRPO loss on the self-correction layer, whose
    arrays are given as `layer2_logp, layer2_old_logp, layer2_ref_logp, layer2_advantages,
    layer2_mask` (and optional `layer2_keep`, `layer2_entropy`). Top-level clip_frac/ratio_mean/kl
    are token-weighted over both layers; per-layer metrics are prefixed layer1_/layer2_."""
    c = resolve(cfg, "mgrpo")
    b2 = {k[len("layer2_"):]: v for k, v in batch.items() if k.startswith("layer2_")}
    b1 = {k: v for k, v in batch.items() if not k.startswith("layer2_")}
    l1, m1 = clip_objective(b1, c)
    l2, m2 = clip_objective(b2, c)
    loss = l1 + c.layer2_coef * l2
    n1, n2 = jnp.sum(completion_mask(b1)), jnp.sum(completion_mask(b2))
    metrics = {f"layer1_{k}": v for k, v in m1.items()}
    metrics.update({f"layer2_{k}": v for k, v in m2.items()})
    for k in ("clip_frac", "ratio_mean", "kl"):
        if k in m1 and k in m2:
            metrics[k] = (m1[k] * n1 + m2[k] * n2) / jnp.maximum(n1 + n2, 1.0)
    metrics["loss"] = loss
    return loss, metrics


def uft_hint_prob(step, p_low=0.05, p_high=0.95, hint_steps=300):
    """UFT (arXiv:2505.16984) cosine hint schedule:
    `p(t) = p_low + 0.5 (p_high - p_low)(1 + cos(pi t / T_hint))` for t <= T_hint, else 0."""
    t = jnp.asarray(step) * 1.0
    p = p_low + 0.5 * (p_high - p_low) * (1.0 + jnp.cos(math.pi * t / hint_steps))
    return jnp.where(t <= hint_steps, p, 0.0)


def uft_sample_hint_length(key, n_chunks, step, p_low=0.05, p_high=0.95, hint_steps=300,
                           max_chunks=5):
    """UFT hint length `l ~ Binomial(n_chunks, p(step))` (n_chunks <= max_chunks, any shape), drawn
    as a sum of `max_chunks` Bernoulli(p) of which the first `n_chunks` count."""
    n_chunks = jnp.asarray(n_chunks)
    p = uft_hint_prob(step, p_low, p_high, hint_steps)
    u = jax.random.uniform(key, n_chunks.shape + (max_chunks,))
    valid = jnp.arange(max_chunks) < n_chunks[..., None]
    return jnp.sum((u < p) & valid, axis=-1)


@register("loss", "uft")
def uft_loss(batch, cfg):
    """UFT (arXiv:2505.16984) [code]: GRPO loss + `lambda_sft * mean NLL over hint tokens`, the
    hint tokens (in the prompt) given as `sft_logp`/`sft_mask` (token_mean; lambda_sft =
    cfg.sft_coef = 1e-3). Hint lengths come from `uft_sample_hint_length`."""
    c = resolve(cfg, "uft")
    loss_rl, metrics = clip_objective(batch, c)
    nll = sft_nll(batch["sft_logp"], batch["sft_mask"], c.sft_loss_agg)
    loss = loss_rl + c.sft_coef * nll
    metrics.update(rl_loss=loss_rl, hint_nll=nll, loss=loss)
    return loss, metrics


@register("loss", "relift")
def relift_loss(batch, cfg):
    """ReLIFT (arXiv:2506.07527) [code], RL side: Dr.GRPO-style clipped surrogate (advantage
    "dr_grpo", seq_mean_token_sum_norm, no KL). The interleaved SFT update on the buffer of
    all-failed prompts is the separate loss "relift_sft"; the buffer itself lives in the trainer."""
    return clip_objective(batch, resolve(cfg, "relift"))


@register("loss", "relift_sft")
def relift_sft_loss(batch, cfg):
    """ReLIFT SFT step on buffered demonstrations: token-mean NLL - 1e-3 * entropy over
    `logp`/`mask` (the demonstration tokens) and `entropy`."""
    c = resolve(cfg, "relift_sft")
    return nll_minus_entropy(batch["logp"], completion_mask(batch), batch.get("entropy"),
                             c.entropy_coef, c.loss_agg, c.l_norm)

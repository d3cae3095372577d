"""Advantage estimators and reward shaping, as pure functions of arrays (spec: objectives.md §2).

Layout: rewards are `[N]` with `N = B*G` and groups contiguous (sequence i is in group i // G);
per-token arrays are `[N, T]` with a float 0/1 completion mask. Every function below is callable
with plain arguments; each is also registered under `("advantage", name)` through a thin wrapper
with the uniform signature

    fn(rewards_N, mask_NT, cfg, **extras) -> [N, T] advantages (or [N] when mask_NT is None)

where `cfg` is an ml_collections ConfigDict or any attribute object (`group_size`, `ddof`, `eps`,
...; missing fields take the defaults shown). Three registered entries are shaping steps rather
than advantages and say so: `dapo_overlong` and `kimi_length_penalty` return shaped rewards `[N]`,
and `dapo_dynamic_sampling` returns the per-sequence keep mask `[N]`.
"""
import jax
import jax.numpy as jnp

from rlpt.registry import register


def _get(cfg, key, default):
    if cfg is None:
        return default
    if hasattr(cfg, "get"):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def _groups(x_N, group_size):
    if x_N.shape[0] % group_size:
        raise ValueError(f"N={x_N.shape[0]} is not a multiple of group_size={group_size}")
    return x_N.reshape((-1, group_size) + x_N.shape[1:])


def _to_tokens(adv_N, mask_NT):
    return adv_N if mask_NT is None else adv_N[:, None] * mask_NT


def _zscore(x, w, axes, ddof, eps):
    """(x - mean) / (std + eps) over the entries with weight w=1 along `axes` (ddof-corrected)."""
    n = jnp.sum(w, axis=axes, keepdims=True)
    mean = jnp.sum(x * w, axis=axes, keepdims=True) / jnp.maximum(n, 1.0)
    var = jnp.sum(w * jnp.square(x - mean), axis=axes, keepdims=True) / jnp.maximum(n - ddof, 1.0)
    return (x - mean) / (jnp.sqrt(var) + eps) * w


# ----------------------------------------------------------------------------- outcome baselines

def grpo_advantages(rewards_N, group_size, ddof=1, eps=1e-6):
    """GRPO (arXiv:2402.03300): `A_i = (r_i - mean_g r) / (std_g r + eps)`; std uses `ddof`
    (default 1, the unbiased std as verl/TRL/Tunix)."""
    r_BG = _groups(rewards_N, group_size)
    return _zscore(r_BG, jnp.ones_like(r_BG), 1, ddof, eps).reshape(-1)


def dr_grpo_advantages(rewards_N, group_size):
    """Dr. GRPO (arXiv:2503.20783): `A_i = r_i - mean_g r` (no std division)."""
    r_BG = _groups(rewards_N, group_size)
    return (r_BG - jnp.mean(r_BG, axis=1, keepdims=True)).reshape(-1)


def rloo_advantages(rewards_N, group_size):
    """RLOO (arXiv:2402.14740): `A_i = r_i - mean_{j != i} r_j` (requires G >= 2)."""
    r_BG = _groups(rewards_N, group_size)
    loo_BG = (jnp.sum(r_BG, axis=1, keepdims=True) - r_BG) / (group_size - 1)
    return (r_BG - loo_BG).reshape(-1)


def masked_whiten(x_NT, mask_NT, eps=1e-8):
    """verl `masked_whiten`: `(x - mean) * rsqrt(var + eps)` with the masked mean and the
    Bessel-corrected masked variance over the whole batch; masked-out entries are returned as 0."""
    n = jnp.sum(mask_NT)
    mean = jnp.sum(x_NT * mask_NT) / jnp.maximum(n, 1.0)
    var = jnp.sum(mask_NT * jnp.square(x_NT - mean)) / jnp.maximum(n - 1.0, 1.0)
    return (x_NT - mean) * jax.lax.rsqrt(var + eps) * mask_NT


def reinforce_pp_advantages(rewards_N, mask_NT, group_size, eps=1e-8):
    """REINFORCE++ with baseline (arXiv:2501.03262; verl/OpenRLHF `reinforce_plus_plus_baseline`):
    subtract the group mean, broadcast to tokens, then whiten over all masked tokens of the
    batch."""
    centered_NT = _to_tokens(dr_grpo_advantages(rewards_N, group_size), mask_NT)
    return masked_whiten(centered_NT, mask_NT, eps)


# ------------------------------------------------------------------------------------------ GAE

def kl_penalized_token_rewards(scores_N, old_logp_NT, ref_logp_NT, mask_NT, beta):
    """InstructGPT (arXiv:2203.02155) per-token reward: `r_t = -beta * (old_logp_t - ref_logp_t)`
    on completion tokens, plus the scalar score on each sequence's last unmasked token."""
    T = mask_NT.shape[-1]
    last_N = T - 1 - jnp.argmax(mask_NT[:, ::-1] > 0, axis=-1)
    has_tok_N = jnp.sum(mask_NT, axis=-1) > 0
    last_NT = (jnp.arange(T)[None, :] == last_N[:, None]) & has_tok_N[:, None]
    kl_NT = -beta * (old_logp_NT - ref_logp_NT) * mask_NT
    return kl_NT + scores_N[:, None] * last_NT.astype(kl_NT.dtype)


def gae(token_rewards_NT, values_NT, mask_NT, gamma=1.0, lam=1.0):
    """GAE (arXiv:1506.02438): `delta_t = r_t + gamma V_{t+1} - V_t`,
    `A_t = sum_l (gamma lam)^l delta_{t+l}`, by a reverse `lax.scan` over T.

    Masked-out positions (padding, tool output) are skipped: the bootstrap value and the running
    advantage pass through them unchanged (verl's masked GAE); their outputs are 0. V after the
    last completion token is 0. Returns `(advantages_NT, returns_NT = A + V)`."""
    def step(carry, xs):
        next_v, next_a = carry
        r, v, m = xs
        a = r + gamma * next_v - v + gamma * lam * next_a
        keep = m > 0
        return (jnp.where(keep, v, next_v), jnp.where(keep, a, next_a)), a * m

    zeros_N = jnp.zeros(values_NT.shape[:1], values_NT.dtype)
    xs = (token_rewards_NT.T, values_NT.T, mask_NT.T)
    _, adv_TN = jax.lax.scan(step, (zeros_N, zeros_N), xs, reverse=True)
    adv_NT = adv_TN.T
    return adv_NT, (adv_NT + values_NT) * mask_NT


# --------------------------------------------------------------------------- process supervision

def grpo_process_advantages(step_rewards_NS, step_end_NS, step_valid_NS, mask_NT, group_size,
                            ddof=1, eps=1e-6):
    """GRPO process supervision (arXiv:2402.03300 §4.1.3): step rewards are z-scored over all
    valid steps of the group; `A_{i,t} = sum of normalised step rewards of sequence i whose step
    ends at token index >= t`. `step_end_NS` holds the token index of each step's last token."""
    N, S = step_rewards_NS.shape
    r_BK = step_rewards_NS.reshape(-1, group_size * S)
    v_BK = step_valid_NS.astype(step_rewards_NS.dtype).reshape(-1, group_size * S)
    norm_NS = _zscore(r_BK, v_BK, 1, ddof, eps).reshape(N, S)
    t_T = jnp.arange(mask_NT.shape[-1])
    after_NST = (step_end_NS[:, :, None] >= t_T[None, None, :]).astype(norm_NS.dtype)
    return jnp.einsum("ns,nst->nt", norm_NS, after_NST) * mask_NT


# ---------------------------------------------------------------------------------- DAPO shaping

def dapo_overlong_penalty(lengths_N, l_max, l_cache):
    """DAPO (arXiv:2503.14476) eq. 13: 0 if `|y| <= L_max - L_cache`;
    `((L_max - L_cache) - |y|) / L_cache` inside the cache band; -1 if `|y| > L_max`."""
    lengths_N = jnp.asarray(lengths_N, jnp.float32)
    expected = l_max - l_cache
    band_N = (expected - lengths_N) / l_cache
    return jnp.where(lengths_N <= expected, 0.0, jnp.where(lengths_N <= l_max, band_N, -1.0))


def dynamic_sampling_mask(rewards_N, group_size, atol=0.0):
    """DAPO dynamic sampling for fixed shapes: a group whose rewards are all equal (max - min <=
    atol) is degenerate (zero advantage). Returns `(keep_N float 0/1, n_kept_groups)`; the loss
    multiplies its mask by keep_N so dropped groups contribute nothing."""
    r_BG = _groups(rewards_N, group_size)
    keep_B = (jnp.max(r_BG, axis=1) - jnp.min(r_BG, axis=1)) > atol
    keep_N = jnp.repeat(keep_B, group_size).astype(rewards_N.dtype)
    return keep_N, jnp.sum(keep_B)


# ---------------------------------------------------------------------------- Kimi length reward

def kimi_length_reward(lengths_N, correct_N, group_size):
    """Kimi k1.5 (arXiv:2501.12599) length reward within each group:
    `lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)`; `lambda_i` if correct else
    `min(0, lambda_i)`; all 0 when max_len == min_len."""
    len_BG = _groups(jnp.asarray(lengths_N, jnp.float32), group_size)
    lo = jnp.min(len_BG, axis=1, keepdims=True)
    span = jnp.max(len_BG, axis=1, keepdims=True) - lo
    lam_BG = jnp.where(span > 0, 0.5 - (len_BG - lo) / jnp.where(span > 0, span, 1.0), 0.0)
    lam_N = lam_BG.reshape(-1)
    return jnp.where(jnp.asarray(correct_N) > 0, lam_N, jnp.minimum(0.0, lam_N))


# ------------------------------------------------------------------------ unlikeliness shaping

def _within_group_rank(score_BG, member_BG):
    """Rank of each entry among the group's members, ascending (ties broken by index)."""
    G = score_BG.shape[1]
    idx = jnp.arange(G)
    lower = (score_BG[:, None, :] < score_BG[:, :, None]) | (
        (score_BG[:, None, :] == score_BG[:, :, None]) & (idx[None, :] < idx[:, None])[None])
    return jnp.sum(lower & member_BG[:, None, :], axis=-1)


def unlikeliness_shaped_rewards(rewards_N, seq_logp_N, group_size, beta_rank=0.25,
                                rank_among="group"):
    """Rewarding the Unlikely (arXiv:2506.02355): rank samples by mean per-token old log-prob,
    ascending within the group (rank 0 = least likely) and set
    `r~_i = r_i (1 - beta_rank rank_i / G)`.
    [code] reading: rank among all G samples (`rank_among="group"`, spec default); the alternative
    `"correct"` ranks only among samples with r > 0 (wrong samples have r_i = 0 either way)."""
    r_BG = _groups(rewards_N, group_size)
    lp_BG = _groups(seq_logp_N, group_size)
    if rank_among == "group":
        member_BG = jnp.ones_like(r_BG, dtype=bool)
    elif rank_among == "correct":
        member_BG = r_BG > 0
    else:
        raise ValueError(f"rank_among must be 'group' or 'correct', got {rank_among!r}")
    rank_BG = _within_group_rank(lp_BG, member_BG)
    return (r_BG * (1.0 - beta_rank * rank_BG / group_size)).reshape(-1)


def unlikeliness_advantages(rewards_N, old_logp_NT, mask_NT, group_size, beta_rank=0.25,
                            ddof=1, eps=1e-6, rank_among="group"):
    """Unlikeliness shaping on the mean per-token `old_logp`, then the GRPO z-score -> [N]."""
    len_N = jnp.maximum(jnp.sum(mask_NT, axis=-1), 1.0)
    seq_logp_N = jnp.sum(old_logp_NT * mask_NT, axis=-1) / len_N
    shaped_N = unlikeliness_shaped_rewards(rewards_N, seq_logp_N, group_size, beta_rank, rank_among)
    return grpo_advantages(shaped_N, group_size, ddof, eps)


# ---------------------------------------------------------------------- GTPO / GRPO-S shaping

_H_EPS = 1e-8


def _entropy_norm(x, pos, neg, axes, norm, ddof, eps):
    if norm == "separate":
        return _zscore(x, pos, axes, ddof, eps) + _zscore(x, neg, axes, ddof, eps)
    if norm == "joint":
        return _zscore(x, pos + neg, axes, ddof, eps)
    if norm == "none":
        return x * (pos + neg)
    raise ValueError(f"entropy shaping norm must be separate/joint/none, got {norm!r}")


def gtpo_advantages(rewards_N, entropy_NT, mask_NT, group_size, alpha1=1.0, alpha2=0.1,
                    ddof=1, eps=1e-6, norm="separate", success_threshold=0.0):
    """GTPO token-level entropy shaping (arXiv:2508.04349) [2nd]. `H` are token entropies of the
    sampling policy. Within a group, O+ = sequences with r > success_threshold, O- the rest;
    `d_t`/`h_t` = number of O+/O- sequences that have a completion token at t. Token rewards:
      success `alpha1 r_i + alpha2 H_{i,t} / sum_{k in O+} H_{k,t} * d_t`,
      failure `-alpha1 - alpha2 (1/H_{j,t}) / sum_{k in O-} (1/H_{k,t}) * h_t`
    (1e-8 added to entropy denominators). Implemented reading (spec): z-scored over the O+ tokens
    and over the O- tokens of the group separately (`norm="separate"`); alternatives `"joint"`
    (one z-score over all the group's tokens) and `"none"`. Returns [N, T].

    Measured caveat: with binary rewards `alpha1 r_i` is one constant over O+, so "separate"
    leaves the O+ tokens' and the O- tokens' advantages each with mean 0 (half of a correct
    response's tokens pushed down): no success/failure contrast is left, only the entropy
    shares. In experiments/gtpo_entropy every GTPO and GRPO-S seed collapsed to ~0 accuracy
    within ~25 RL steps with "separate"; "joint" keeps the contrast."""
    T = mask_NT.shape[-1]
    succ_BG1 = _groups(rewards_N > success_threshold, group_size)[..., None]
    m_BGT = _groups(mask_NT, group_size)
    r_BG1 = _groups(rewards_N, group_size)[..., None]
    H_BGT = _groups(entropy_NT, group_size)
    pos = m_BGT * succ_BG1
    neg = m_BGT * (~succ_BG1)
    d_B1T = jnp.sum(pos, axis=1, keepdims=True)
    h_B1T = jnp.sum(neg, axis=1, keepdims=True)
    share_pos = H_BGT / (jnp.sum(H_BGT * pos, axis=1, keepdims=True) + _H_EPS)
    inv_BGT = 1.0 / (H_BGT + _H_EPS)
    share_neg = inv_BGT / (jnp.sum(inv_BGT * neg, axis=1, keepdims=True) + _H_EPS)
    r_pos = alpha1 * r_BG1 + alpha2 * share_pos * d_B1T
    r_neg = -alpha1 - alpha2 * share_neg * h_B1T
    tok_r = jnp.where(succ_BG1, r_pos, r_neg)
    return _entropy_norm(tok_r, pos, neg, (1, 2), norm, ddof, eps).reshape(-1, T)


def grpo_s_advantages(rewards_N, entropy_NT, mask_NT, group_size, alpha1=1.0, alpha2=0.1,
                      ddof=1, eps=1e-6, norm="separate", success_threshold=0.0):
    """GRPO-S sequence-level entropy shaping (arXiv:2508.04349) [2nd]: as GTPO with the
    per-sequence mean entropy `Hbar_i` and group counts n (successes) / m (failures):
      success `beta1 r_i + beta2 Hbar_i / sum_{O+} Hbar * n`,
      failure `-beta1 - beta2 (1/Hbar_j) / sum_{O-} (1/Hbar) * m`
    (beta1/beta2 passed as alpha1/alpha2), then the sequence-level z-score over O+ and O-
    separately (`norm`, as in GTPO). Returns [N]."""
    len_N = jnp.maximum(jnp.sum(mask_NT, axis=-1), 1.0)
    Hbar_BG = _groups(jnp.sum(entropy_NT * mask_NT, axis=-1) / len_N, group_size)
    succ_BG = _groups(rewards_N > success_threshold, group_size)
    r_BG = _groups(rewards_N, group_size)
    pos = succ_BG.astype(r_BG.dtype)
    neg = 1.0 - pos
    share_pos = Hbar_BG / (jnp.sum(Hbar_BG * pos, axis=1, keepdims=True) + _H_EPS)
    inv_BG = 1.0 / (Hbar_BG + _H_EPS)
    share_neg = inv_BG / (jnp.sum(inv_BG * neg, axis=1, keepdims=True) + _H_EPS)
    r_pos = alpha1 * r_BG + alpha2 * share_pos * jnp.sum(pos, axis=1, keepdims=True)
    r_neg = -alpha1 - alpha2 * share_neg * jnp.sum(neg, axis=1, keepdims=True)
    seq_r = jnp.where(succ_BG, r_pos, r_neg)
    return _entropy_norm(seq_r, pos, neg, 1, norm, ddof, eps).reshape(-1)


# --------------------------------------------------------------------- registered thin wrappers

def _G(cfg):
    return int(_get(cfg, "group_size", 1))


@register("advantage", "grpo")
def _grpo(rewards_N, mask_NT, cfg, **extras):
    A_N = grpo_advantages(rewards_N, _G(cfg), _get(cfg, "ddof", 1), _get(cfg, "eps", 1e-6))
    return _to_tokens(A_N, mask_NT)


@register("advantage", "dr_grpo")
def _dr_grpo(rewards_N, mask_NT, cfg, **extras):
    return _to_tokens(dr_grpo_advantages(rewards_N, _G(cfg)), mask_NT)


@register("advantage", "rloo")
def _rloo(rewards_N, mask_NT, cfg, **extras):
    return _to_tokens(rloo_advantages(rewards_N, _G(cfg)), mask_NT)


@register("advantage", "reinforce_pp")
def _reinforce_pp(rewards_N, mask_NT, cfg, **extras):
    return reinforce_pp_advantages(rewards_N, mask_NT, _G(cfg), _get(cfg, "whiten_eps", 1e-8))


@register("advantage", "gae")
def _gae(rewards_N, mask_NT, cfg, *, values, old_logp=None, ref_logp=None, **extras):
    """rewards_N are sequence scores; extras `values [N,T]`, and `old_logp`/`ref_logp` when
    cfg.kl_coef > 0. cfg: gamma, lam (default 1, verl), kl_coef (0), whiten (True).
    Returns advantages only; call `gae` directly for the returns."""
    beta = _get(cfg, "kl_coef", 0.0)
    kl_term = _get(cfg, "kl_term", None)  # static flag; a plain config of numbers: kl_coef != 0
    if not (bool(beta) if kl_term is None else kl_term):
        old_logp = ref_logp = jnp.zeros_like(values)
    r_NT = kl_penalized_token_rewards(rewards_N, old_logp, ref_logp, mask_NT, beta)
    adv_NT, _ = gae(r_NT, values, mask_NT, _get(cfg, "gamma", 1.0), _get(cfg, "lam", 1.0))
    if _get(cfg, "whiten", True):
        adv_NT = masked_whiten(adv_NT, mask_NT, _get(cfg, "whiten_eps", 1e-8))
    return adv_NT


@register("advantage", "grpo_process")
def _grpo_process(rewards_N, mask_NT, cfg, *, step_rewards, step_ends, step_valid, **extras):
    """extras: `step_rewards [N,S]`, `step_ends [N,S]` (token index), `step_valid [N,S]`;
    rewards_N is unused (process rewards replace the outcome reward)."""
    return grpo_process_advantages(step_rewards, step_ends, step_valid, mask_NT, _G(cfg),
                                   _get(cfg, "ddof", 1), _get(cfg, "eps", 1e-6))


@register("advantage", "dapo_overlong")
def _dapo_overlong(rewards_N, mask_NT, cfg, lengths=None, **extras):
    """Shaped rewards `r + R_len` [N]; lengths default to the mask's token counts.
    cfg: overlong_max (20480), overlong_cache (4096)."""
    lengths = jnp.sum(mask_NT, axis=-1) if lengths is None else lengths
    pen_N = dapo_overlong_penalty(lengths, _get(cfg, "overlong_max", 20480),
                                  _get(cfg, "overlong_cache", 4096))
    return rewards_N + pen_N


@register("advantage", "dapo_dynamic_sampling")
def _dapo_dynamic_sampling(rewards_N, mask_NT, cfg, **extras):
    """Returns the keep mask [N] (1 for non-degenerate groups); see `dynamic_sampling_mask`."""
    return dynamic_sampling_mask(rewards_N, _G(cfg), _get(cfg, "dynamic_sampling_atol", 0.0))[0]


@register("advantage", "kimi_length_penalty")
def _kimi_length_penalty(rewards_N, mask_NT, cfg, lengths=None, correct=None, **extras):
    """Shaped rewards `r + length_penalty_weight * len_reward` [N]; lengths default to mask
    counts, correct to r > 0."""
    lengths = jnp.sum(mask_NT, axis=-1) if lengths is None else lengths
    correct = rewards_N > 0 if correct is None else correct
    bonus_N = kimi_length_reward(lengths, correct, _G(cfg))
    return rewards_N + _get(cfg, "length_penalty_weight", 1.0) * bonus_N


@register("advantage", "unlikeliness")
def _unlikeliness(rewards_N, mask_NT, cfg, *, old_logp, **extras):
    A_N = unlikeliness_advantages(rewards_N, old_logp, mask_NT, _G(cfg),
                                  _get(cfg, "beta_rank", 0.25), _get(cfg, "ddof", 1),
                                  _get(cfg, "eps", 1e-6), _get(cfg, "rank_among", "group"))
    return _to_tokens(A_N, mask_NT)


def _entropy_kwargs(cfg):
    return dict(alpha1=_get(cfg, "alpha1", 1.0), alpha2=_get(cfg, "alpha2", 0.1),
                ddof=_get(cfg, "ddof", 1), eps=_get(cfg, "eps", 1e-6),
                norm=_get(cfg, "entropy_shaping_norm", "separate"),
                success_threshold=_get(cfg, "success_threshold", 0.0))


@register("advantage", "gtpo")
def _gtpo(rewards_N, mask_NT, cfg, *, entropy, **extras):
    return gtpo_advantages(rewards_N, entropy, mask_NT, _G(cfg), **_entropy_kwargs(cfg))


@register("advantage", "grpo_s")
def _grpo_s(rewards_N, mask_NT, cfg, *, entropy, **extras):
    A_N = grpo_s_advantages(rewards_N, entropy, mask_NT, _G(cfg), **_entropy_kwargs(cfg))
    return _to_tokens(A_N, mask_NT)

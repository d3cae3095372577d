"""Advantage estimators shared by several algorithms, as pure functions of arrays (spec:
objectives.md §2). An algorithm's own estimator lives in its file (rlpt/algorithms/<name>.py);
reward shaping and group filters are pieces (rlpt/pieces/, or the file of the algorithm that
defines them).

Layout: rewards are `[N]` with `N = B*G` and groups contiguous (sequence i is in group i // G);
per-token arrays are `[N, T]` with a float 0/1 completion mask. Every function below is callable
with plain arguments; each estimator is also registered under `("advantage", name)` as an
`Advantage` record whose function has the uniform signature

    fn(rewards_N, mask_NT, cfg, **extras) -> [N, T] advantages (or [N] when mask_NT is None)

where `cfg` is an ml_collections ConfigDict or any attribute object (`group_size`, `ddof`, `eps`,
...; missing fields take the defaults shown). `group_baseline` says why one sample per group
learns nothing for an estimator whose baseline is the rest of its group (rlpt.config refuses
`num_samples=1` with it).
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from rlpt.registry import register


class Advantage(NamedTuple):
    """A registered estimator: `fn` (module doc) and, for a group baseline, why one sample per
    group is degenerate."""
    fn: Callable
    group_baseline: str = ""

    def __call__(self, rewards_N, mask_NT, cfg, **extras):
        return self.fn(rewards_N, mask_NT, cfg, **extras)


DEGENERATE = "the group statistics of one sample are degenerate, nothing is learned"


def advantage(name: str, group_baseline: str = ""):
    """Decorator: registers `fn` as the ("advantage", name) estimator; returns `fn`."""
    def deco(fn):
        register("advantage", name)(Advantage(fn, group_baseline))
        return fn
    return deco


def cfg_get(cfg, key, default):
    if cfg is None:
        return default
    if hasattr(cfg, "get"):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def group_rows(x_N, group_size):
    if x_N.shape[0] % group_size:
        raise ValueError(f"N={x_N.shape[0]} is not a multiple of group_size={group_size}")
    return x_N.reshape((-1, group_size) + x_N.shape[1:])


def to_tokens(adv_N, mask_NT):
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
    r_BG = group_rows(rewards_N, group_size)
    return _zscore(r_BG, jnp.ones_like(r_BG), 1, ddof, eps).reshape(-1)


def dr_grpo_advantages(rewards_N, group_size):
    """Dr. GRPO (arXiv:2503.20783): `A_i = r_i - mean_g r` (no std division)."""
    r_BG = group_rows(rewards_N, group_size)
    return (r_BG - jnp.mean(r_BG, axis=1, keepdims=True)).reshape(-1)


def rloo_advantages(rewards_N, group_size):
    """RLOO (arXiv:2402.14740): `A_i = r_i - mean_{j != i} r_j`. A singleton group (G = 1) has
    no leave-one-out baseline: its advantages are 0, no signal (configs refuse G = 1 for RLOO;
    the function stays finite). verl's `compute_rloo_outcome_advantage` differs there: it keeps
    the raw reward (a baseline of 0)."""
    if group_size == 1:
        return jnp.zeros_like(rewards_N)
    r_BG = group_rows(rewards_N, group_size)
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
    centered_NT = to_tokens(dr_grpo_advantages(rewards_N, group_size), mask_NT)
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
    succ_BG1 = group_rows(rewards_N > success_threshold, group_size)[..., None]
    m_BGT = group_rows(mask_NT, group_size)
    r_BG1 = group_rows(rewards_N, group_size)[..., None]
    H_BGT = group_rows(entropy_NT, group_size)
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
    Hbar_BG = group_rows(jnp.sum(entropy_NT * mask_NT, axis=-1) / len_N, group_size)
    succ_BG = group_rows(rewards_N > success_threshold, group_size)
    r_BG = group_rows(rewards_N, group_size)
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

def cfg_group_size(cfg):
    return int(cfg_get(cfg, "group_size", 1))


@advantage("grpo", "the group std of one reward is 0: every advantage is 0, nothing is learned")
def _grpo(rewards_N, mask_NT, cfg, **extras):
    A_N = grpo_advantages(rewards_N, cfg_group_size(cfg), cfg_get(cfg, "ddof", 1),
                          cfg_get(cfg, "eps", 1e-6))
    return to_tokens(A_N, mask_NT)


@advantage("dr_grpo", "reward minus the group mean is 0, nothing is learned")
def _dr_grpo(rewards_N, mask_NT, cfg, **extras):
    return to_tokens(dr_grpo_advantages(rewards_N, cfg_group_size(cfg)), mask_NT)


@advantage("rloo", "the leave-one-out mean divides by G - 1 = 0")
def _rloo(rewards_N, mask_NT, cfg, **extras):
    return to_tokens(rloo_advantages(rewards_N, cfg_group_size(cfg)), mask_NT)


@advantage("reinforce_pp", "reward minus the group mean is 0, nothing is learned")
def _reinforce_pp(rewards_N, mask_NT, cfg, **extras):
    return reinforce_pp_advantages(rewards_N, mask_NT, cfg_group_size(cfg),
                                   cfg_get(cfg, "whiten_eps", 1e-8))


@advantage("gae")
def _gae(rewards_N, mask_NT, cfg, *, values, old_logp=None, ref_logp=None, **extras):
    """rewards_N are sequence scores; extras `values [N,T]`, and `old_logp`/`ref_logp` when
    cfg.kl_coef > 0. cfg: gamma, lam (default 1, verl), kl_coef (0), whiten (True).
    Returns advantages only; call `gae` directly for the returns."""
    beta = cfg_get(cfg, "kl_coef", 0.0)
    kl_term = cfg_get(cfg, "kl_term", None)  # static flag; a plain config of numbers: kl_coef != 0
    if not (bool(beta) if kl_term is None else kl_term):
        old_logp = ref_logp = jnp.zeros_like(values)
    r_NT = kl_penalized_token_rewards(rewards_N, old_logp, ref_logp, mask_NT, beta)
    adv_NT, _ = gae(r_NT, values, mask_NT, cfg_get(cfg, "gamma", 1.0), cfg_get(cfg, "lam", 1.0))
    if cfg_get(cfg, "whiten", True):
        adv_NT = masked_whiten(adv_NT, mask_NT, cfg_get(cfg, "whiten_eps", 1e-8))
    return adv_NT


@advantage("grpo_process", DEGENERATE)
def _grpo_process(rewards_N, mask_NT, cfg, *, step_rewards, step_ends, step_valid, **extras):
    """extras: `step_rewards [N,S]`, `step_ends [N,S]` (token index), `step_valid [N,S]`;
    rewards_N is unused (process rewards replace the outcome reward)."""
    return grpo_process_advantages(step_rewards, step_ends, step_valid, mask_NT,
                                   cfg_group_size(cfg), cfg_get(cfg, "ddof", 1),
                                   cfg_get(cfg, "eps", 1e-6))


def _entropy_kwargs(cfg):
    return dict(alpha1=cfg_get(cfg, "alpha1", 1.0), alpha2=cfg_get(cfg, "alpha2", 0.1),
                ddof=cfg_get(cfg, "ddof", 1), eps=cfg_get(cfg, "eps", 1e-6),
                norm=cfg_get(cfg, "entropy_shaping_norm", "separate"),
                success_threshold=cfg_get(cfg, "success_threshold", 0.0))


@advantage("gtpo", DEGENERATE)
def _gtpo(rewards_N, mask_NT, cfg, *, entropy, **extras):
    return gtpo_advantages(rewards_N, entropy, mask_NT, cfg_group_size(cfg), **_entropy_kwargs(cfg))


@advantage("grpo_s", DEGENERATE)
def _grpo_s(rewards_N, mask_NT, cfg, *, entropy, **extras):
    A_N = grpo_s_advantages(rewards_N, entropy, mask_NT, cfg_group_size(cfg),
                            **_entropy_kwargs(cfg))
    return to_tokens(A_N, mask_NT)

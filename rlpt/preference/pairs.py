"""Building preference pairs from sampled responses, with static shapes (jit-friendly).

(a) RLSF (arXiv 2507.21931): an answer's confidence from per-token probabilities over its answer
    span, and the pair rule "a over b when conf_a >= 0.9 and conf_a > conf_b".
(b) Online / semi-online DPO (Lanchantin et al., arXiv 2506.21495): best vs worst of N scored
    samples per prompt; prompts without contrast are dropped through a validity mask.
(c) The generator-sync rule of semi-online DPO: `should_sync(step, s)`.
Spec: ../shared/spec/objectives.md section 4.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

CONFIDENCE_METHODS = ("p_top1", "p1_minus_p2", "neg_entropy")


# ----------------------------------------------------------------------------------------------
# (a) RLSF confidence and pairs


def token_confidence_stats(logits):
    """Per-token `top1_prob`, `top2_prob`, `entropy` (nats) `[N, T]` from logits `[N, T, V]`."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    top2 = jax.lax.top_k(logp, 2)[0]
    p = jnp.exp(logp)
    return {"top1_prob": jnp.exp(top2[..., 0]), "top2_prob": jnp.exp(top2[..., 1]),
            "entropy": -jnp.sum(p * logp, axis=-1)}


def span_confidence(span_mask, method="p_top1", *, top1_prob=None, top2_prob=None, entropy=None,
                    vocab_size=None):
    """Confidence `[N]` of each answer: the mean over its answer span (`span_mask [N, T]`) of

    - "p_top1" (RLSF's default): p(top-1 token), needs `top1_prob [N, T]`;
    - "p1_minus_p2": p(top-1) - p(top-2), needs `top1_prob` and `top2_prob`;
    - "neg_entropy": `1 - H_t / log(vocab_size)` (normalised entropy turned into a confidence in
      [0, 1], 1 = certain), needs `entropy [N, T]` in nats and `vocab_size`.
    Pass probabilities, e.g. `exp(top1_logp)` when the sampler returns log-probs.
    A response with an empty span (no answer found) gets confidence 0.
    """
    m = span_mask.astype(jnp.float32)
    if method == "p_top1":
        per_tok = _need(top1_prob, "top1_prob", method)
    elif method == "p1_minus_p2":
        per_tok = _need(top1_prob, "top1_prob", method) - _need(top2_prob, "top2_prob", method)
    elif method == "neg_entropy":
        if vocab_size is None or vocab_size < 2:
            raise ValueError(f"method 'neg_entropy' needs vocab_size >= 2, got {vocab_size}")
        per_tok = 1.0 - _need(entropy, "entropy", method) / math.log(vocab_size)
    else:
        raise ValueError(f"unknown confidence method {method!r}; known: {CONFIDENCE_METHODS}")
    n = jnp.sum(m, axis=-1)
    return jnp.where(n > 0, jnp.sum(per_tok * m, axis=-1) / jnp.maximum(n, 1.0), 0.0)


def _need(x, name, method):
    if x is None:
        raise ValueError(f"confidence method {method!r} needs {name}")
    return x.astype(jnp.float32)


def confidence_pairs(conf, threshold=0.9, sample_mask=None):
    """RLSF pairs from confidences `conf [B, N]` of N answers per prompt.

    Pair (a over b) is valid when `conf_a >= threshold` and `conf_a > conf_b` (strictly). Every
    unordered pair {i < j} of a prompt occupies one slot, oriented so that `a` is the more
    confident one (at most one orientation can be valid). Returns `(a, b, valid)`, each
    `[B, P]` with P = N(N-1)/2: indices into the N answers and the validity mask.
    `sample_mask [B, N]` (optional) excludes answers (e.g. truncated ones).
    """
    i, j = np.triu_indices(conf.shape[-1], 1)
    ci, cj = conf[:, i], conf[:, j]
    i_first = ci >= cj
    a = jnp.where(i_first, i, j).astype(jnp.int32)
    b = jnp.where(i_first, j, i).astype(jnp.int32)
    ca, cb = jnp.maximum(ci, cj), jnp.minimum(ci, cj)
    valid = (ca >= threshold) & (ca > cb)
    if sample_mask is not None:
        valid = valid & (sample_mask[:, i] > 0) & (sample_mask[:, j] > 0)
    return a, b, valid


# ----------------------------------------------------------------------------------------------
# (b) online DPO pairs


def best_worst_pairs(rewards, sample_mask=None, key=None):
    """Online-DPO pairs from N scored samples per prompt: `rewards [B, N]` -> chosen, rejected,
    valid, each `[B]`.

    chosen = a highest-reward sample, rejected = a lowest-reward sample. Ties are broken by the
    lowest index (argmax/argmin return the first) unless `key` is given, in which case uniformly at
    random among the tied samples (the alternative reading of the paper, which picks a random
    correct and a random incorrect sample for verifiable rewards). A prompt is valid only if
    its best reward is strictly above its worst (no contrast -> dropped: use `valid` as the
    loss `mask`). `sample_mask [B, N]` (optional) excludes samples.
    """
    r = rewards.astype(jnp.float32)
    m = jnp.ones_like(r, dtype=bool) if sample_mask is None else sample_mask > 0
    best_val = jnp.max(jnp.where(m, r, -jnp.inf), axis=-1, keepdims=True)
    worst_val = jnp.min(jnp.where(m, r, jnp.inf), axis=-1, keepdims=True)
    is_best = m & (r == best_val)
    is_worst = m & (r == worst_val)
    if key is None:
        chosen, rejected = jnp.argmax(is_best, axis=-1), jnp.argmax(is_worst, axis=-1)
    else:
        k1, k2 = jax.random.split(key)
        u1, u2 = jax.random.uniform(k1, r.shape), jax.random.uniform(k2, r.shape)
        chosen = jnp.argmax(jnp.where(is_best, u1, -1.0), axis=-1)
        rejected = jnp.argmax(jnp.where(is_worst, u2, -1.0), axis=-1)
    valid = (best_val > worst_val)[..., 0]
    return chosen.astype(jnp.int32), rejected.astype(jnp.int32), valid


def take_samples(x, idx):
    """Selects one sample per prompt: `x [B, N, ...]`, `idx [B]` -> `[B, ...]`."""
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 1))
    return jnp.take_along_axis(x, idx, axis=1)[:, 0]


# ----------------------------------------------------------------------------------------------
# (c) generator sync


def should_sync(step, s):
    """Semi-online DPO: whether to copy the trained policy into the generator before sampling the
    batch of update `step` (0-based count of updates done so far).

    True iff s is finite and `step % s == 0`: s=1 is online DPO (sync every step), s=None or inf
    is offline DPO (the generator stays the initial model; never sync). Step 0 returns True for
    finite s (a no-op: generator and policy both start as the initial model). `step` may be a
    Python int or a JAX integer array (then the result is an array).
    """
    if s is None or (isinstance(s, float) and math.isinf(s) and s > 0):
        return False
    if isinstance(s, bool) or not float(s).is_integer() or s < 1:
        raise ValueError(f"sync interval s must be a positive integer, None or inf; got {s!r}")
    if isinstance(step, (int, np.integer)) and step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step % int(s) == 0

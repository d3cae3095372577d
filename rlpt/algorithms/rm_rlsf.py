"""RLSF (arXiv 2507.21931), `rm.kind = "rlsf"`: a reward model without labels. N samples per
prompt (`rm.num_samples`, 4) from the policy (`frozen["policy"]`, the SFT model), each one's
confidence = mean p(top-1) over its answer span (the completion without the eos; or
`confidence_method` p1_minus_p2 / neg_entropy), pairs "a over b" when conf_a >= `threshold`
(0.9) and conf_a > conf_b, and the Bradley-Terry loss (rlpt.losses.reward_model.bt_rm_loss) on
those pairs.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.losses.preference import resolve_config
from rlpt.losses.reward_model import BT_DEFAULTS, bt_rm_loss
from rlpt.models.transformer import forward

DEFAULTS = dict(BT_DEFAULTS, num_samples=4, confidence_method="p_top1", threshold=0.9)
DYNAMIC = frozenset({"threshold"})
CONFIDENCE_METHODS = ("p_top1", "p1_minus_p2", "neg_entropy")


# ----------------------------------------------------------------------------------------------
# Confidence and pairs, with static shapes


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
# Hooks of the reward-model step


def confidence_labelled_pairs(spec, state, batch, data, c, key):
    """Policy samples, their confidences and the pairs they make (no task labels; the task
    reward is only logged, to see whether confidence carries it: `label_agree` / `label_disagree`,
    the shares of the pairs whose confident answer is right and the other wrong / the reverse,
    the rest tying; `confidence_auc_within`, the share of a prompt's (right, wrong) sample pairs,
    any confidence, where the right one is more confident, ties half; 0.5 = no signal)."""
    out, r = spec.policy_samples(state, batch, key)
    b, n = r.shape
    p = batch["prompt"].shape[1]
    rep = lambda x: jnp.repeat(x, n, axis=0)
    tokens = jnp.concatenate([rep(batch["prompt"]), out.tokens], axis=1)
    valid = jnp.concatenate([rep(batch["prompt_mask"]), out.mask], axis=1).astype(bool)
    logits = forward(spec.policy_cfg, state.frozen["policy"], tokens, valid)[:, p - 1:-1]
    stats = token_confidence_stats(logits)
    stop = jnp.isin(out.tokens, jnp.array(spec.scfg.stop_tokens))
    span = (out.mask > 0) & ~stop
    conf = span_confidence(span, c.confidence_method, vocab_size=logits.shape[-1],
                           **stats).reshape(b, n)
    a, bb, pair_valid = confidence_pairs(conf, c.threshold)
    group = lambda x: x.reshape(b, n, -1)
    gather = lambda x, idx: jnp.take_along_axis(x, idx[..., None], axis=1)
    responses = jnp.stack([gather(group(out.tokens), a), gather(group(out.tokens), bb)], 2)
    masks = jnp.stack([gather(group(out.mask.astype(jnp.int32)), a),
                       gather(group(out.mask.astype(jnp.int32)), bb)], 2)
    metrics = confidence_pair_metrics(conf, r, a, bb, pair_valid)
    return dict(data, pair_responses=responses, pair_masks=masks, pair_valid=pair_valid), metrics


def confidence_pair_metrics(conf, r, a, b, pair_valid):
    """How the confidences `conf [B, N]` of N answers per prompt relate to their task rewards
    `r [B, N]` (> 0.5 = right), for the pairs `(a, b, pair_valid)` of confidence_pairs (see
    confidence_labelled_pairs)."""
    ra, rb = jnp.take_along_axis(r, a, 1), jnp.take_along_axis(r, b, 1)
    v = pair_valid.astype(jnp.float32)
    right_wrong = (r[:, :, None] > 0.5) & (r[:, None, :] <= 0.5)   # [B, i, j]: i right, j wrong
    above = (conf[:, :, None] > conf[:, None, :]) + 0.5 * (conf[:, :, None] == conf[:, None, :])
    return dict(confidence=conf.mean(), pair_frac=v.mean(), sample_reward=r.mean(),
                label_agree=jnp.sum((ra > rb) * v) / jnp.maximum(v.sum(), 1.0),
                label_disagree=jnp.sum((ra < rb) * v) / jnp.maximum(v.sum(), 1.0),
                confidence_auc_within=jnp.sum(above * right_wrong)
                / jnp.maximum(right_wrong.sum(), 1))


def pair_groups(spec, params, data, c):
    """Each valid pair as a 2-response group with scores (1, 0)."""
    b, npair, _, t = data["pair_responses"].shape
    rows = lambda k: jnp.repeat(data[k], npair, axis=0)
    r = spec.score_groups(params, rows("prompt"), rows("prompt_mask"),
                          data["pair_responses"].reshape(b * npair, 2, t),
                          data["pair_masks"].reshape(b * npair, 2, t))
    valid = data["pair_valid"].reshape(-1, 1).astype(jnp.float32)
    return {"rewards": r, "scores": jnp.broadcast_to(jnp.array([1.0, 0.0]), r.shape),
            "response_mask": jnp.broadcast_to(valid, r.shape)}


def validate(cfg):
    r = resolve_config(cfg.rm, DEFAULTS)
    if r.num_samples < 2:
        raise UserError("config rm.num_samples: rlsf needs >= 2 samples per prompt")
    if r.confidence_method not in CONFIDENCE_METHODS:
        raise UserError(f"config rm.confidence_method: {r.confidence_method!r}; known: "
                        f"{CONFIDENCE_METHODS}")


ALGORITHM = registry.register("algorithm", "rm_rlsf")(Algorithm(
    "rm_rlsf", bt_rm_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="reward_model",
    validate=validate,
    trainer_hooks=dict(num_samples=lambda c: c.num_samples, prepare=confidence_labelled_pairs,
                       loss_inputs=pair_groups)))

"""Reward-model math shared by several reward-model algorithms, as pure functions of predicted
rewards (no model inside): the logistic loss, Bradley-Terry over all pairs of K ranked responses
(`bt_rm`: the loss of rm_bt and rm_rlsf), pairwise accuracy, and the noisy AI judge (rm_vrpo,
rm_rlaif_soft). Each kind's own loss, defaults and hooks live in rlpt/algorithms/rm_<kind>.py.

Spec: ../shared/spec/objectives.md section 4. Registered with the loss signature
`loss_fn(batch: dict, cfg) -> (loss_scalar, metrics_dict)`; `cfg` is overlaid on the loss's
defaults, so it may set only the fields it changes or be None. Optional `mask` keys weight
examples: a reduction is `sum(l * mask) / max(sum(mask), 1)`.
"""
import jax
import jax.numpy as jnp
import numpy as np

from rlpt.losses.preference import masked_mean, resolve_config
from rlpt.registry import register

BT_REDUCTIONS = ("pair", "prompt")
BT_DEFAULTS = dict(reduction="pair")


def logistic_loss(t):
    """`l(t) = -log sigmoid(t)`, the Bradley-Terry negative log-likelihood of margin t."""
    return -jax.nn.log_sigmoid(t)


# ----------------------------------------------------------------------------------------------
# Bradley-Terry over all pairs of K ranked responses


def all_pairs(k: int):
    """Static index arrays `(i, j)` of the C(k, 2) pairs i < j."""
    i, j = np.triu_indices(k, 1)
    return i.astype(np.int32), j.astype(np.int32)


def bt_pairwise(rewards, scores, response_mask=None):
    """Bradley-Terry over every pair of a prompt's K responses (InstructGPT, arXiv 2203.02155).

    rewards [B, K]: reward-model outputs; scores [B, K]: the label, higher = preferred (pass
    `-rank` for a ranking). For each pair i < j the winner is the higher-scored response and
    `margin = r_winner - r_loser`; the pair loss is `-log sigmoid(margin)`. Pairs whose scores tie
    carry no preference and are skipped (invalid), as are pairs touching a response with
    `response_mask == 0`.
    Returns (losses [B, P], margins [B, P], valid [B, P]) with P = K(K-1)/2.
    """
    i, j = all_pairs(rewards.shape[-1])
    ds = scores[:, i] - scores[:, j]
    valid = ds != 0
    if response_mask is not None:
        valid = valid & (response_mask[:, i] > 0) & (response_mask[:, j] > 0)
    margins = jnp.sign(ds).astype(rewards.dtype) * (rewards[:, i] - rewards[:, j])
    return logistic_loss(margins), margins, valid


def pairwise_accuracy(rewards, scores, response_mask=None):
    """Fraction of valid (non-tied, unmasked) pairs whose rewards order them as the scores do.
    A pair with equal rewards counts as wrong (0): a tie predicts no preference."""
    _, margins, valid = bt_pairwise(rewards, scores, response_mask)
    return masked_mean((margins > 0).astype(rewards.dtype), valid)


@register("loss", "bt_rm")
def bt_rm_loss(batch, cfg):
    """Bradley-Terry reward-model loss over all C(K, 2) pairs of each prompt.

    Keys: rewards [B, K], scores [B, K] (higher = preferred), optional response_mask [B, K].
    `cfg.reduction`: "pair" (default) averages over all valid pairs of the batch; "prompt"
    averages each prompt's valid pairs first, then over prompts that have any (InstructGPT's
    1/C(K,2) normalisation; the two agree when no pair is skipped).
    Metrics: accuracy (ties in reward count 0), mean winner-minus-loser margin, valid pair count.
    """
    cfg = resolve_config(cfg, BT_DEFAULTS, "bt_rm")
    losses, margins, valid = bt_pairwise(batch["rewards"], batch["scores"],
                                         batch.get("response_mask"))
    v = valid.astype(losses.dtype)
    if cfg.reduction == "pair":
        loss = masked_mean(losses, v)
    elif cfg.reduction == "prompt":
        n = jnp.sum(v, axis=-1)
        per_prompt = jnp.sum(losses * v, axis=-1) / jnp.maximum(n, 1.0)
        loss = masked_mean(per_prompt, (n > 0).astype(losses.dtype))
    else:
        raise ValueError(f"unknown bt_rm reduction {cfg.reduction!r}; known: {BT_REDUCTIONS}")
    metrics = {
        "loss": loss,
        "accuracy": masked_mean((margins > 0).astype(losses.dtype), v),
        "margin": masked_mean(margins, v),
        "num_pairs": jnp.sum(v),
    }
    return loss, metrics


# ----------------------------------------------------------------------------------------------
# The AI judge of VRPO and RLAIF


def judge_probability(r_a, r_b, key, scale, noise):
    """`sigmoid(scale (R_a - R_b) + noise * eps)`, eps ~ N(0, 1): a noisy AI judge (a stand-in
    for an AI labeller, a fixed noisy function of the task reward R) of "a over b"."""
    eps = jax.random.normal(key, jnp.shape(r_a))
    return jax.nn.sigmoid(scale * (r_a - r_b) + noise * eps)

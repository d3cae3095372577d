"""Reward-model losses as pure functions of predicted rewards (no model inside).

Spec: ../shared/spec/objectives.md section 4. Registered with the loss signature
`loss_fn(batch: dict, cfg: ConfigDict) -> (loss_scalar, metrics_dict)`; `cfg` is overlaid on
`default_reward_model_config(name)`, so it may set only the fields it changes or be None.
Optional `mask` keys weight examples: a reduction is `sum(l * mask) / max(sum(mask), 1)`.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rlpt.losses.preference import masked_mean, resolve_config
from rlpt.registry import register

BT_REDUCTIONS = ("pair", "prompt")
VRPO_LOSS_TYPES = ("logistic", "hinge")


def default_reward_model_config(name: str) -> ml_collections.ConfigDict:
    """Defaults for each registered reward-model loss."""
    defaults = {
        "bt_rm": dict(reduction="pair"),
        "vrpo_rm": dict(loss_type="logistic"),
        "rlaif_soft_rm": dict(),
        "rluf_rm": dict(pos_weight=1.0),
    }
    if name not in defaults:
        raise KeyError(f"no reward-model loss {name!r}; known: {sorted(defaults)}")
    return ml_collections.ConfigDict(dict(name=name, **defaults[name]))


def logistic_loss(t):
    """`l(t) = -log sigmoid(t)`, the Bradley-Terry negative log-likelihood of margin t."""
    return -jax.nn.log_sigmoid(t)


def bounded_hinge_loss(t):
    """`l(t) = max(0, 1 - t) - max(0, -0.5 - t)`: hinge for t >= -0.5, constant 1.5 below."""
    return jnp.maximum(0.0, 1.0 - t) - jnp.maximum(0.0, -0.5 - t)


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
    cfg = resolve_config(cfg, default_reward_model_config("bt_rm"))
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
# VRPO robust reward model


def vrpo_losses(d, g, d_star, g_star, loss_type="logistic"):
    """VRPO per-pair reward-model loss (Ye et al., "Robust RLHF for LLM fine-tuning", arXiv
    2504.03784; spec [code]):
      `l(D) - [g l(D) + (1-g) l(-D)] + [g* l(D*) + (1-g*) l(-D*)]`
    D = r(y_w) - r(y_l) on the labelled pair, g an auxiliary preference probability of y_w over y_l,
    D* = r(a1) - r(a2) on extra responses from the reference policy with auxiliary probability g*.
    The first two terms swap the labelled loss for its g-expected value; the third adds it back on
    unlabelled data: a control variate. With (a1, a2) = (y_w, y_l) and g* = g it reduces to l(D).
    `l` is the logistic loss or the bounded hinge (`loss_type="hinge"`).
    """
    if loss_type == "logistic":
        l = logistic_loss
    elif loss_type == "hinge":
        l = bounded_hinge_loss
    else:
        raise ValueError(f"unknown VRPO loss_type {loss_type!r}; known: {VRPO_LOSS_TYPES}")
    expected = g * l(d) + (1.0 - g) * l(-d)
    expected_star = g_star * l(d_star) + (1.0 - g_star) * l(-d_star)
    return l(d) - expected + expected_star


@register("loss", "vrpo_rm")
def vrpo_rm_loss(batch, cfg):
    """VRPO reward-model loss; see `vrpo_losses`.

    Keys: r_w, r_l [B] (rewards of the labelled chosen / rejected), g [B], r_a1, r_a2 [B]
    (rewards of two reference-policy responses), g_star [B], optional mask [B].
    cfg.loss_type: "logistic" (default) or "hinge".
    """
    cfg = resolve_config(cfg, default_reward_model_config("vrpo_rm"))
    d = batch["r_w"] - batch["r_l"]
    d_star = batch["r_a1"] - batch["r_a2"]
    losses = vrpo_losses(d, batch["g"], d_star, batch["g_star"], cfg.loss_type)
    mask = batch.get("mask")
    loss = masked_mean(losses, mask)
    metrics = {
        "loss": loss,
        "accuracy": masked_mean((d > 0).astype(losses.dtype), mask),
        "margin": masked_mean(d, mask),
    }
    return loss, metrics


# ----------------------------------------------------------------------------------------------
# RLAIF soft labels and RLUF binary feedback


@register("loss", "rlaif_soft_rm")
def rlaif_soft_rm_loss(batch, cfg):
    """RLAIF soft-label distillation (Lee et al., arXiv 2309.00267): cross-entropy of the reward
    model's BT probability against the AI judge's preference probability p:
      `l = -[p log sig(D) + (1-p) log sig(-D)]`, `D = r(a) - r(b)`.
    Keys: r_a, r_b [B], p [B] (judge's probability that a is preferred), optional mask [B].
    Metrics: `kl_to_judge` = loss minus the judge's entropy (0 when sig(D) == p).
    """
    d = batch["r_a"] - batch["r_b"]
    p = batch["p"]
    losses = p * logistic_loss(d) + (1.0 - p) * logistic_loss(-d)
    mask = batch.get("mask")
    loss = masked_mean(losses, mask)
    entropy = -(p * jnp.log(jnp.clip(p, 1e-12, 1.0))
                + (1.0 - p) * jnp.log(jnp.clip(1.0 - p, 1e-12, 1.0)))
    metrics = {"loss": loss, "kl_to_judge": masked_mean(losses - entropy, mask),
               "margin": masked_mean(d, mask)}
    return loss, metrics


@register("loss", "rluf_rm")
def rluf_rm_loss(batch, cfg):
    """RLUF reward model (Han et al., arXiv 2505.14946; spec [2nd]): `P[Love] = sig(f(x, y))`
    trained with binary cross-entropy on implicit user signals:
      `l = -[pos_weight * y log sig(f) + (1 - y) log sig(-f)]`.
    `cfg.pos_weight` (default 1, plain BCE) up-weights the rare positive signal, an option the
    secondary summaries do not settle. Keys: logits [B] (f), labels [B] in [0, 1], optional mask.
    """
    cfg = resolve_config(cfg, default_reward_model_config("rluf_rm"))
    f, y = batch["logits"], batch["labels"].astype(batch["logits"].dtype)
    losses = cfg.pos_weight * y * logistic_loss(f) + (1.0 - y) * logistic_loss(-f)
    mask = batch.get("mask")
    loss = masked_mean(losses, mask)
    metrics = {
        "loss": loss,
        "accuracy": masked_mean(((f > 0) == (y > 0.5)).astype(f.dtype), mask),
        "p_love": masked_mean(jax.nn.sigmoid(f), mask),
    }
    return loss, metrics

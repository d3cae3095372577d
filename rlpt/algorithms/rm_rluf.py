"""RLUF (Han et al., arXiv 2505.14946; spec [2nd]), `rm.kind = "rluf"`: `P[Love] = sig(f(x, y))`
trained with binary cross-entropy on a binary implicit user signal per response, here
`love ~ Bernoulli(love_correct if R > 0.5 else love_wrong)` (0.8 / 0.1) from the task reward R;
pos_weight 1 (plain BCE)."""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.losses.preference import masked_mean, resolve_config
from rlpt.losses.reward_model import logistic_loss

DEFAULTS = dict(love_correct=0.8, love_wrong=0.1, pos_weight=1.0)
DYNAMIC = frozenset({"love_correct", "love_wrong", "pos_weight"})


@registry.register("loss", "rluf_rm")
def rluf_rm_loss(batch, cfg):
    """RLUF reward model: binary cross-entropy on implicit user signals
      `l = -[pos_weight * y log sig(f) + (1 - y) log sig(-f)]`.
    `cfg.pos_weight` (default 1, plain BCE) up-weights the rare positive signal, an option the
    secondary summaries do not settle. Keys: logits [B] (f), labels [B] in [0, 1], optional mask.
    """
    cfg = resolve_config(cfg, DEFAULTS, "rluf_rm")
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


def love_labels(spec, state, batch, data, c, key):
    """One Bernoulli "love" signal per response; metric `love_rate`."""
    p_love = jnp.where(data["scores"] > 0.5, c.love_correct, c.love_wrong)
    labels = jax.random.bernoulli(key, p_love).astype(jnp.float32)
    return dict(data, labels=labels), {"love_rate": labels.mean()}


def response_logits(spec, params, data, c):
    r = spec.score_groups(params, data["prompt"], data["prompt_mask"], data["responses"],
                          data["response_mask"])
    return {"logits": r.reshape(-1), "labels": data["labels"].reshape(-1)}


def validate(cfg):
    r = resolve_config(cfg.rm, DEFAULTS)
    if not 0 <= r.love_wrong <= 1 or not 0 <= r.love_correct <= 1:
        raise UserError("config rm.love_correct/love_wrong: must be probabilities")


ALGORITHM = registry.register("algorithm", "rm_rluf")(Algorithm(
    "rm_rluf", rluf_rm_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="reward_model",
    validate=validate, trainer_hooks=dict(prepare=love_labels, loss_inputs=response_logits)))

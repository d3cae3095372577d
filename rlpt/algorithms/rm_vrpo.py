"""VRPO robust reward model (Ye et al., "Robust RLHF for LLM fine-tuning", arXiv 2504.03784;
spec [code]), `rm.kind = "vrpo"`: the labelled pair (y_w, y_l) = best vs worst of the group with
auxiliary probability g = judge(R_w, R_l); D* on two responses sampled inside the step from the
reference policy (`frozen["policy"]`, the SFT model) with g* = judge(R_a1, R_a2); the judge is
rlpt.losses.reward_model.judge_probability (judge_scale 2, judge_noise 1); loss_type "logistic"
(or "hinge")."""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.losses.preference import best_worst_pairs, masked_mean, resolve_config, take_samples
from rlpt.losses.reward_model import judge_probability, logistic_loss

DEFAULTS = dict(loss_type="logistic", judge_scale=2.0, judge_noise=1.0)
DYNAMIC = frozenset({"judge_scale", "judge_noise"})
VRPO_LOSS_TYPES = ("logistic", "hinge")


def bounded_hinge_loss(t):
    """`l(t) = max(0, 1 - t) - max(0, -0.5 - t)`: hinge for t >= -0.5, constant 1.5 below."""
    return jnp.maximum(0.0, 1.0 - t) - jnp.maximum(0.0, -0.5 - t)


def vrpo_losses(d, g, d_star, g_star, loss_type="logistic"):
    """VRPO per-pair reward-model loss:
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


@registry.register("loss", "vrpo_rm")
def vrpo_rm_loss(batch, cfg):
    """VRPO reward-model loss; see `vrpo_losses`.

    Keys: r_w, r_l [B] (rewards of the labelled chosen / rejected), g [B], r_a1, r_a2 [B]
    (rewards of two reference-policy responses), g_star [B], optional mask [B].
    cfg.loss_type: "logistic" (default) or "hinge".
    """
    cfg = resolve_config(cfg, DEFAULTS, "vrpo_rm")
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


def labelled_and_sampled(spec, state, batch, data, c, key):
    """The best-vs-worst pair and its g, two policy samples and their g*."""
    s = data["scores"]
    judge = lambda a, b, k: judge_probability(a, b, k, c.judge_scale, c.judge_noise)
    w, l, _ = best_worst_pairs(s)
    data = dict(data, w=w, l=l, g=judge(take_samples(s, w), take_samples(s, l),
                                        jax.random.fold_in(key, 1)))
    out, r = spec.policy_samples(state, batch, jax.random.fold_in(key, 2))
    data["extra"] = out.tokens.reshape(r.shape[0], 2, -1)
    data["extra_mask"] = out.mask.astype(jnp.int32).reshape(r.shape[0], 2, -1)
    data["g_star"] = judge(r[:, 0], r[:, 1], jax.random.fold_in(key, 3))
    return data, {"sample_reward": r.mean()}


def pair_rewards(spec, params, data, c):
    groups = lambda resp, m: spec.score_groups(params, data["prompt"], data["prompt_mask"],
                                               resp, m)
    lab = jnp.stack([take_samples(data["responses"], data["w"]),
                     take_samples(data["responses"], data["l"])], axis=1)
    lab_m = jnp.stack([take_samples(data["response_mask"], data["w"]),
                       take_samples(data["response_mask"], data["l"])], axis=1)
    r_lab, r_ext = groups(lab, lab_m), groups(data["extra"], data["extra_mask"])
    return {"r_w": r_lab[:, 0], "r_l": r_lab[:, 1], "g": data["g"],
            "r_a1": r_ext[:, 0], "r_a2": r_ext[:, 1], "g_star": data["g_star"]}


def validate(cfg):
    r = resolve_config(cfg.rm, DEFAULTS)
    if r.loss_type not in VRPO_LOSS_TYPES:
        raise UserError(f"config rm.loss_type: {r.loss_type!r}; known: {VRPO_LOSS_TYPES}")


ALGORITHM = registry.register("algorithm", "rm_vrpo")(Algorithm(
    "rm_vrpo", vrpo_rm_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="reward_model",
    validate=validate,
    trainer_hooks=dict(num_samples=lambda c: 2, prepare=labelled_and_sampled,
                       loss_inputs=pair_rewards)))

"""RLAIF soft labels (Lee et al., arXiv 2309.00267), `rm.kind = "rlaif_soft"`: the reward model
is distilled on all C(K,2) pairs of a group with the soft label p = judge(R_a, R_b) of a noisy AI
judge (rlpt.losses.reward_model.judge_probability: `sigmoid(judge_scale (R_a - R_b) +
judge_noise * eps)`, a stand-in for an AI labeller; R the task reward); judge_scale 2,
judge_noise 1."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.preference import masked_mean
from rlpt.losses.reward_model import all_pairs, judge_probability, logistic_loss

DEFAULTS = dict(judge_scale=2.0, judge_noise=1.0)
DYNAMIC = frozenset({"judge_scale", "judge_noise"})


@registry.register("loss", "rlaif_soft_rm")
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


def judge_labels(spec, state, batch, data, c, key):
    """The judge's soft label `p` of every pair of the group; metric `judge_agree` (share of the
    pairs with a task-reward contrast that the judge orders as the task reward does)."""
    s = data["scores"]
    i, j = all_pairs(s.shape[1])
    p = judge_probability(s[:, i], s[:, j], key, c.judge_scale, c.judge_noise)
    agree = ((p > 0.5) == (s[:, i] > s[:, j])).astype(jnp.float32)
    contrast = (s[:, i] != s[:, j]).astype(jnp.float32)
    metrics = {"judge_agree": jnp.sum(agree * contrast) / jnp.maximum(contrast.sum(), 1.0)}
    return dict(data, p=p), metrics


def pair_rewards(spec, params, data, c):
    r = spec.score_groups(params, data["prompt"], data["prompt_mask"], data["responses"],
                          data["response_mask"])
    i, j = all_pairs(r.shape[1])
    return {"r_a": r[:, i].reshape(-1), "r_b": r[:, j].reshape(-1), "p": data["p"].reshape(-1)}


ALGORITHM = registry.register("algorithm", "rm_rlaif_soft")(Algorithm(
    "rm_rlaif_soft", rlaif_soft_rm_loss, defaults=DEFAULTS, dynamic=DYNAMIC,
    kind="reward_model", trainer_hooks=dict(prepare=judge_labels, loss_inputs=pair_rewards)))

"""LightningRL (Agent Lightning, arXiv:2508.03680): a multi-call episode decomposed into its
transitions, one per LLM call, each trained as a single-turn sample carrying the episode's
credit.

A transition of an episode row is the run of policy tokens between two environment blocks (tool
results, environment replies): transition j holds the policy tokens after the j-th block
(`rlpt.sampling.Rollout.transitions`). Credit assignment is the paper's default: every
transition of an episode gets the episode's advantage, here GRPO's group z-score over the G
episodes of a prompt. The loss is GRPO's clipped surrogate over N x S transition rows instead of
the N episode rows (`per_transition`), so with the default seq_mean_token_mean a call's tokens
are averaged within the call, then over the non-empty calls of the minibatch:

    L = (1/K) sum_{(i,j): |o_ij| > 0} (1/|o_ij|) sum_{t in o_ij} l_t

(K the number of non-empty transitions), where whole-trajectory GRPO, the "concatenation with
masking" the paper contrasts, takes (1/N) sum_i (1/|o_i|) sum_{t in o_i} l_t. The two differ in
how tokens are weighted: a short call weighs as much as a long one, and an episode with more
calls weighs more. With one call per episode (every plain rollout) they are the same loss
(tests/algorithms/test_lightning_rl.py). Under token_mean aggregation the split changes nothing.

`max_transitions` S (static) is the most transitions a row is split into: the calls after the
S-th are merged into the last transition (logged as `transitions_merged`, the share of episodes
that had more). With the calculator rollout it must cover `tool.max_calls + 1` (checked by
`validate`). The expanded rows cost S times the loss inputs' memory ([N, T] per key).
"""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.losses.policy import clip_objective, resolve


DEFAULTS = dict(beta=0.04, max_transitions=3)
DYNAMIC = frozenset()


def per_transition(batch, S: int) -> dict:
    """The loss inputs of N episode rows as N*S transition rows: row i*S+j keeps the tokens of
    episode i's transition j (its mask is the episode's mask on those tokens, 0 elsewhere); every
    other [N, ...] array (log-probs, advantages, rewards, keep) is repeated per transition."""
    seg_NT = jnp.minimum(batch["transitions"], S - 1)
    N, T = seg_NT.shape
    in_NST = (seg_NT[:, None, :] == jnp.arange(S)[None, :, None])
    out = {}
    for k, v in batch.items():
        if k == "transitions":
            continue
        if k == "mask":
            out[k] = (v[:, None, :] * in_NST.astype(v.dtype)).reshape(N * S, T)
        elif getattr(v, "ndim", 0) >= 1 and v.shape[0] == N:
            out[k] = jnp.repeat(v, S, axis=0)
        else:
            out[k] = v
    return out


@registry.register("loss", "lightning_rl")
def lightning_rl_loss(batch, cfg):
    """LightningRL (Agent Lightning, arXiv:2508.03680): GRPO's clipped surrogate (+ beta k3 KL)
    over the episode rows split into their transitions (`per_transition`), each transition with
    its episode's advantage; aggregation `loss_agg` over transition rows (module doc)."""
    c = resolve(cfg, "lightning_rl", DEFAULTS)
    return clip_objective(per_transition(batch, int(c.max_transitions)), c)


def extras(spec, state, batch, out, data, raw_N, c, key):
    """Each completion column's transition (`spec.rollout.transitions`), capped at S - 1, into
    the loss rows; metrics: non-empty transitions per episode, and the share of episodes with
    more than S."""
    S = int(c.max_transitions)
    seg_NT = spec.rollout.transitions(out)
    capped_NT = jnp.minimum(seg_NT, S - 1).astype(jnp.int32)
    mask_NT = out.mask > 0
    n_N = jnp.max(jnp.where(mask_NT, seg_NT + 1, 0), axis=-1)
    in_NS = jnp.any(mask_NT[:, None, :]
                    & (capped_NT[:, None, :] == jnp.arange(S)[None, :, None]), axis=-1)
    data = dict(data, transitions=capped_NT)
    metrics = {"transitions_per_episode": in_NS.sum(-1).astype(jnp.float32).mean(),
               "transitions_merged": (n_N > S).astype(jnp.float32).mean()}
    return data, {}, metrics


def validate(cfg):
    S = cfg.algo.get("max_transitions", DEFAULTS["max_transitions"])
    if isinstance(S, bool) or not isinstance(S, int) or S < 1:
        raise UserError(f"config algo.max_transitions: {S!r}; expected an integer >= 1 (the most "
                        f"LLM calls an episode is split into)")
    tool = cfg.get("tool")
    if cfg.get("rollout") is not None and cfg.rollout.kind == "tool" and tool is not None \
            and tool.max_calls + 1 > S:
        raise UserError(f"config algo.max_transitions: {S} < tool.max_calls + 1 = "
                        f"{tool.max_calls + 1}; an episode of the calculator rollout has up to "
                        f"max_calls + 1 transitions (raise algo.max_transitions)")


ALGORITHM = registry.register("algorithm", "lightning_rl")(Algorithm(
    "lightning_rl", lightning_rl_loss, defaults=DEFAULTS, dynamic=DYNAMIC, validate=validate,
    extras=extras))

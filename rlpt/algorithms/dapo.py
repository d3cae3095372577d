"""DAPO (arXiv:2503.14476), all of it in one chain: clip-higher (eps_high 0.28) and token-mean
aggregation (its loss), the +-1 correctness reward and the overlong shaping (two shaping pieces,
here), and dynamic sampling (the shared piece rlpt.pieces.dynamic_sampling, on by default;
`oversample` k > 1 samples k*B prompts and keeps B groups).

| shaping           | formula (objectives.md §2)                                         |
|-------------------|---------------------------------------------------------------------|
| `dapo_reward_pm1` | `r = reward_correct if correct else reward_wrong` (+1 / -1)        |
| `dapo_overlong`   | `r += R_len(|y|)`, DAPO eq. 13 with `overlong_max`, `overlong_cache` |
"""
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm, Piece, correct_of
from rlpt.losses.policy import clip_objective, resolve

DEFAULTS = dict(eps_high=0.28, loss_agg="token_mean", group_size=16, dynamic_sampling=True,
                dynamic_sampling_atol=0.0, overlong_max=20480, overlong_cache=4096,
                reward_correct=1.0, reward_wrong=-1.0,
                shaping=("dapo_reward_pm1", "dapo_overlong"))
DYNAMIC = frozenset({"reward_correct", "reward_wrong"})


def dapo_overlong_penalty(lengths_N, l_max, l_cache):
    """DAPO (arXiv:2503.14476) eq. 13: 0 if `|y| <= L_max - L_cache`;
    `((L_max - L_cache) - |y|) / L_cache` inside the cache band; -1 if `|y| > L_max`."""
    lengths_N = jnp.asarray(lengths_N, jnp.float32)
    expected = l_max - l_cache
    band_N = (expected - lengths_N) / l_cache
    return jnp.where(lengths_N <= expected, 0.0, jnp.where(lengths_N <= l_max, band_N, -1.0))



def reward_pm1(spec, state, r_N, raw_N, out, c):
    return jnp.where(correct_of(raw_N, c), c.get("reward_correct", 1.0),
                     c.get("reward_wrong", -1.0)).astype(r_N.dtype), {}


def overlong(spec, state, r_N, raw_N, out, c):
    return r_N + dapo_overlong_penalty(out.lengths, c.get("overlong_max", 20480),
                                       c.get("overlong_cache", 4096)), {}


REWARD_PM1 = registry.register("shaping", "dapo_reward_pm1")(Piece(
    "dapo_reward_pm1", dynamic=DYNAMIC, shape=reward_pm1))
OVERLONG = registry.register("shaping", "dapo_overlong")(Piece("dapo_overlong", shape=overlong))


@registry.register("loss", "dapo")
def dapo_loss(batch, cfg):
    """DAPO (arXiv:2503.14476): clip-higher (eps_low 0.2, eps_high 0.28), token_mean, no KL;
    `batch["keep"]` (dynamic sampling) removes degenerate groups from the loss. Overlong shaping is
    applied to the rewards (advantage "dapo_overlong"). At r=1, d loss/d logp = -A_i / sum_j |o_j|.
    Metric `effective_groups` = kept sequences / group_size."""
    c = resolve(cfg, "dapo", DEFAULTS)
    loss, metrics = clip_objective(batch, c)
    keep_N = batch.get("keep", jnp.ones(batch["mask"].shape[:1], batch["mask"].dtype))
    metrics["effective_groups"] = jnp.sum(keep_N) / c.group_size
    return loss, metrics



ALGORITHM = registry.register("algorithm", "dapo")(Algorithm(
    "dapo", dapo_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

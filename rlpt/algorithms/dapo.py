"""DAPO (arXiv:2503.14476), all of it: clip-higher (eps_high 0.28) and token-mean aggregation
(its loss, rlpt.losses.policy.dapo_loss, defaults in rlpt.losses.defaults), the +-1 correctness
reward and overlong shaping (registered here), and dynamic sampling (rlpt.algorithms.
dynamic_sampling, on by default; `oversample` k > 1 samples k*B prompts and keeps B groups).

| shaping           | formula (objectives.md §2)                                         |
|-------------------|---------------------------------------------------------------------|
| `dapo_reward_pm1` | `r = reward_correct if correct else reward_wrong` (+1 / -1)        |
| `dapo_overlong`   | `r += R_len(|y|)`, DAPO eq. 13 with `overlong_max`, `overlong_cache` |
"""
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import dapo_overlong_penalty
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import dapo_loss


@registry.register("shaping", "dapo_reward_pm1")
def reward_pm1(r_N, correct_N, out, c, G, step):
    return jnp.where(correct_N, c.get("reward_correct", 1.0),
                     c.get("reward_wrong", -1.0)).astype(r_N.dtype)


@registry.register("shaping", "dapo_overlong")
def overlong(r_N, correct_N, out, c, G, step):
    return r_N + dapo_overlong_penalty(out.lengths, c.get("overlong_max", 20480),
                                       c.get("overlong_cache", 4096))


ALGORITHM = registry.register("algorithm", "dapo")(Algorithm("dapo", dapo_loss))

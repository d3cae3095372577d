"""Kimi k1.5 (arXiv:2501.12599): online mirror descent (its loss, rlpt.losses.policy.
kimi_k15_loss) with the length penalty as reward shaping `kimi_length_penalty`:
`r += length_penalty_weight * len_reward` (within each group, objectives.md §2).

The paper warms the penalty up: "standard policy optimization without length penalty, followed
by a constant length penalty for the rest of training" (§2.3.3). `length_penalty_start` is that
switch: the penalty is 0 for RL steps 0 .. start-1 and `length_penalty_weight` from then on
(default 0: from the first step)."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import kimi_length_reward
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import kimi_k15_loss


@registry.register("shaping", "kimi_length_penalty")
def length_penalty(r_N, correct_N, out, c, G, step):
    on = (jnp.asarray(step) >= c.get("length_penalty_start", 0)).astype(jnp.float32)
    weight = on * c.get("length_penalty_weight", 1.0)
    return r_N + weight * kimi_length_reward(out.lengths, correct_N, G)


ALGORITHM = registry.register("algorithm", "kimi_k15")(Algorithm("kimi_k15", kimi_k15_loss))

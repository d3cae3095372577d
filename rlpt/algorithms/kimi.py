"""Kimi k1.5 (arXiv:2501.12599): online mirror descent (its loss, rlpt.losses.policy.
kimi_k15_loss) with the length penalty as reward shaping `kimi_length_penalty`:
`r += length_penalty_weight * len_reward` (within each group, objectives.md §2)."""
from rlpt import registry
from rlpt.advantages import kimi_length_reward
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import kimi_k15_loss


@registry.register("shaping", "kimi_length_penalty")
def length_penalty(r_N, correct_N, out, c, G):
    return r_N + c.get("length_penalty_weight", 1.0) * kimi_length_reward(out.lengths, correct_N, G)


ALGORITHM = registry.register("algorithm", "kimi_k15")(Algorithm("kimi_k15", kimi_k15_loss))

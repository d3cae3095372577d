"""Algorithms that are a loss and nothing else: the generic step's defaults do the rest.

Each is one `Algorithm(name, loss)`; its paper defaults live beside its loss
(rlpt.losses.defaults) and its math in rlpt.losses.policy:

  grpo           DeepSeekMath, arXiv:2402.03300
  dr_grpo        Dr. GRPO, arXiv:2503.20783
  gspo           GSPO (sequence ratio), arXiv:2507.18071
  gspo_token     GSPO-token, arXiv:2507.18071
  gmpo           GMPO (geometric mean), arXiv:2507.20673
  gtpo, grpo_s   entropy-shaped advantages, arXiv:2508.04349
  one_shot_rlvr  1-shot RLVR, arXiv:2504.20571 (its task and ranking: one_shot.py)
"""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses import policy

ALGORITHMS = [Algorithm(name, registry.get("loss", name))
              for name in ("grpo", "dr_grpo", "gspo", "gspo_token", "gmpo", "gtpo", "grpo_s",
                           "one_shot_rlvr")]
for _a in ALGORITHMS:
    registry.register("algorithm", _a.name)(_a)
del policy  # imported for its registrations

"""Bradley-Terry reward model (InstructGPT, arXiv 2203.02155), `rm.kind = "bt"`:
`-log sig(r_w - r_l)` over all C(K,2) pairs of a prompt's K ranked responses (pairs with tied
scores skipped), `rm.reduction` "pair" (default) or "prompt" (rlpt.losses.reward_model.bt_rm_loss).
The reward-model step's default hooks are BT's (the group's rewards against its scores), so the
record has none."""
from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.reward_model import BT_DEFAULTS, bt_rm_loss

DEFAULTS = dict(BT_DEFAULTS)

ALGORITHM = registry.register("algorithm", "rm_bt")(Algorithm(
    "rm_bt", bt_rm_loss, defaults=DEFAULTS, kind="reward_model"))

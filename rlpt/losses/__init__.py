"""Pure loss functions by family; importing this package registers every loss.

To add a family, write `rlpt/losses/<family>.py` with `@register("loss", name)` functions and add
one `from rlpt.losses import <family>` line below.
"""
from rlpt.losses import aggregation, defaults, kl  # noqa: F401  (helpers, no registrations)
from rlpt.losses import supervised  # noqa: F401
from rlpt.losses import policy  # noqa: F401
from rlpt.losses import preference, reward_model  # noqa: F401

"""The one place that fills the registry: importing this module registers every loss, advantage,
shaping, algorithm and task (each module registers its own names when imported). Entry points
(rlpt.config, rlpt.train, the preference trainer) import this module, nothing else does."""
import rlpt.advantages  # noqa: F401
import rlpt.algorithms  # noqa: F401
import rlpt.losses  # noqa: F401
import rlpt.tasks.gsm8k_task  # noqa: F401
import rlpt.tasks.one_shot  # noqa: F401
import rlpt.tasks.scratchpad  # noqa: F401
import rlpt.tasks.synthetic  # noqa: F401
import rlpt.tasks.tool_task  # noqa: F401

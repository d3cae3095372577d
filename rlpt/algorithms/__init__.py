"""Algorithm-specific pieces of the fused RL step (rlpt.rl_step), as pure functions of arrays.

    common      packing token rows (left/right padding) and stripping stop tokens
    shaping     reward shaping names (DAPO +-1 and overlong, Kimi length, unlikeliness) and
                DAPO dynamic sampling (keep mask, over-sampled group selection)
    ppo         value head on the final hidden state, GAE returns
    kdrl        building the frozen teacher model from config
    expo        ExP-GRPO answer-conditioned prompts and the scored self-explanations
    mgrpo       MGRPO layer-2 (self-correction) prompts
    uft         UFT hint prompts from the gold solution
    relift      ReLIFT buffer of all-failed prompts carried in the train state
    one_shot    1-shot RLVR: the `one_shot` task and the accuracy-variance ranking loop

Importing this package registers the `one_shot` task.
"""
from rlpt.algorithms import one_shot  # noqa: F401  (registers the "one_shot" task)

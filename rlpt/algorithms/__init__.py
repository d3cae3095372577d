"""Policy-gradient algorithms, one file each, every one an `Algorithm` record (base.py) that the
generic step (rlpt.step) runs. Importing this package registers them all:

    simple      grpo, dr_grpo, gspo, gspo_token, gmpo, gtpo, grpo_s, one_shot_rlvr (a loss each)
    ppo         value head in params["value_head"], GAE returns, clipped value loss
    dapo        +-1 and overlong shaping, dynamic sampling, clip-higher
    kimi        Kimi k1.5 mirror descent and its length penalty
    kdrl        distillation from a frozen teacher (state.frozen["teacher"])
    expo        ExP-GRPO self-explanations
    mgrpo       MGRPO layer-2 self-correction
    uft         UFT hint prompts and the hint NLL
    relift      ReLIFT buffer of all-failed prompts and its interleaved SFT update
    sft         sft / relift_sft inside the RL loop
    cispo       CISPO clipped importance-sampling weights
Feature modules used by several: shaping (the shaping registry, unlikeliness), dynamic_sampling,
common (token-row packing), one_shot (1-shot RLVR example ranking).
"""
from rlpt.algorithms import (cispo, dapo, expo, kdrl, kimi, mgrpo, ppo, relift,  # noqa: F401
                             sft, simple, uft)

"""Reward shaping before advantages: `cfg.algo.shaping` is an ordered list of names, each a
registered ("shaping", name) function `fn(r_N, correct_N, out, c, G, step) -> r_N` applied in
turn (`step`: the RL step about to be taken, 0-based; a schedule reads it).

Shapings live with the algorithm that defines them (DAPO's +-1 and overlong in dapo.py, Kimi's
length penalty in kimi.py); the unlikeliness shaping of "Rewarding the Unlikely" (arXiv
2506.02355) is here, as it shapes any group-baseline algorithm:

    r *= 1 - beta_rank * rank / G   (rank by mean sampled log-prob within the group)

"correct" always means the task reward before shaping exceeds `algo.success_threshold`.
"""
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import unlikeliness_shaped_rewards
from rlpt.losses.aggregation import masked_mean


def correct_of(raw_N, algo):
    return raw_N > algo.get("success_threshold", 0.0)


def shape_rewards(names, raw_N, out, algo, group_size, step=0):
    """Applies the shapings `names` in order to the task rewards `raw_N` [N]; `out` is the
    SampleOutput (lengths, mask, sampled log-probs); `step` the RL step (0-based)."""
    correct_N = correct_of(raw_N, algo)
    r = raw_N
    for name in names:
        r = registry.get("shaping", name)(r, correct_N, out, algo, group_size, step)
    return r.astype(jnp.float32)


@registry.register("shaping", "unlikeliness")
def unlikeliness(r_N, correct_N, out, c, G, step):
    seq_logp_N = masked_mean(out.logprobs, out.mask, axis=-1)
    return unlikeliness_shaped_rewards(r_N, seq_logp_N, G, c.get("beta_rank", 0.25),
                                       c.get("rank_among", "group"))

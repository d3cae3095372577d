"""Rewarding the Unlikely (arXiv:2506.02355): a reward shaping for any group-baseline algorithm,

    r *= 1 - beta_rank * rank / G   (rank by mean sampled log-prob within the group, ascending)

registered as the shaping `unlikeliness` (`algo.shaping=("unlikeliness",)`, objectives.md §2),
and as the advantage `unlikeliness` (the shaping on `old_logp`, then GRPO's z-score).
"""
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import (DEGENERATE, advantage, cfg_get, cfg_group_size, group_rows,
                             grpo_advantages, to_tokens)
from rlpt.algorithms.base import Piece
from rlpt.losses.aggregation import masked_mean


def _within_group_rank(score_BG, member_BG):
    """Rank of each entry among the group's members, ascending (ties broken by index)."""
    G = score_BG.shape[1]
    idx = jnp.arange(G)
    lower = (score_BG[:, None, :] < score_BG[:, :, None]) | (
        (score_BG[:, None, :] == score_BG[:, :, None]) & (idx[None, :] < idx[:, None])[None])
    return jnp.sum(lower & member_BG[:, None, :], axis=-1)


def unlikeliness_shaped_rewards(rewards_N, seq_logp_N, group_size, beta_rank=0.25,
                                rank_among="group"):
    """Rewarding the Unlikely (arXiv:2506.02355): rank samples by mean per-token old log-prob,
    ascending within the group (rank 0 = least likely) and set
    `r~_i = r_i (1 - beta_rank rank_i / G)`.
    [code] reading: rank among all G samples (`rank_among="group"`, spec default); the alternative
    `"correct"` ranks only among samples with r > 0 (wrong samples have r_i = 0 either way)."""
    r_BG = group_rows(rewards_N, group_size)
    lp_BG = group_rows(seq_logp_N, group_size)
    if rank_among == "group":
        member_BG = jnp.ones_like(r_BG, dtype=bool)
    elif rank_among == "correct":
        member_BG = r_BG > 0
    else:
        raise ValueError(f"rank_among must be 'group' or 'correct', got {rank_among!r}")
    rank_BG = _within_group_rank(lp_BG, member_BG)
    return (r_BG * (1.0 - beta_rank * rank_BG / group_size)).reshape(-1)


def unlikeliness_advantages(rewards_N, old_logp_NT, mask_NT, group_size, beta_rank=0.25,
                            ddof=1, eps=1e-6, rank_among="group"):
    """Unlikeliness shaping on the mean per-token `old_logp`, then the GRPO z-score -> [N]."""
    len_N = jnp.maximum(jnp.sum(mask_NT, axis=-1), 1.0)
    seq_logp_N = jnp.sum(old_logp_NT * mask_NT, axis=-1) / len_N
    shaped_N = unlikeliness_shaped_rewards(rewards_N, seq_logp_N, group_size, beta_rank, rank_among)
    return grpo_advantages(shaped_N, group_size, ddof, eps)


@advantage("unlikeliness", DEGENERATE)
def _unlikeliness(rewards_N, mask_NT, cfg, *, old_logp, **extras):
    A_N = unlikeliness_advantages(rewards_N, old_logp, mask_NT, cfg_group_size(cfg),
                                  cfg_get(cfg, "beta_rank", 0.25), cfg_get(cfg, "ddof", 1),
                                  cfg_get(cfg, "eps", 1e-6), cfg_get(cfg, "rank_among", "group"))
    return to_tokens(A_N, mask_NT)



def shape(spec, state, r_N, raw_N, out, c):
    seq_logp_N = masked_mean(out.logprobs, out.mask, axis=-1)
    return unlikeliness_shaped_rewards(r_N, seq_logp_N, spec.G, c.get("beta_rank", 0.25),
                                       c.get("rank_among", "group")), {}


PIECE = registry.register("shaping", "unlikeliness")(Piece(
    "unlikeliness", dynamic=frozenset({"beta_rank"}), shape=shape))

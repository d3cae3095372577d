"""The prompt carried in `target` / `target_len`, for rewards that must read (prompt, completion).

The RL step calls `reward(frozen, tokens, mask, target, target_len)` and never passes the
prompt; it does pass `target` (repeated per sample). A reward that scores the pair (an LM judge,
rlpt.rewards.judge; a trained reward model, rlpt.preference.reward_model) therefore gets a batch
whose `target` is the LEFT-padded prompt and `target_len` its number of real tokens
(`prompt_as_target`), and rebuilds `(prompt, prompt_mask)` from them (`prompt_from_target`).
"""
from typing import Dict

import jax.numpy as jnp
import numpy as np


def prompt_as_target(batch: Dict) -> Dict:
    """A task batch whose `target` / `target_len` carry the prompt (module doc).

    The task's gold target is dropped from the batch by this (the RL step's logged `accuracy`
    then thresholds the reward at 0.5, not the task reward).
    """
    out = dict(batch)
    out["target"] = np.asarray(batch["prompt"], np.int32)
    out["target_len"] = np.asarray(batch["prompt_mask"]).sum(axis=1).astype(np.int32)
    return out


def prompt_from_target(target, target_len):
    """Rebuilds `(prompt, prompt_mask)` from a `target` holding the LEFT-padded prompt and
    `target_len` its number of real tokens (see `prompt_as_target`)."""
    width = target.shape[1]
    mask = (jnp.arange(width)[None, :] >= width - target_len[:, None]).astype(jnp.int32)
    return target, mask


def prompt_with_target(batch: Dict) -> Dict:
    """A task batch whose `target` holds the LEFT-padded prompt followed by the task's gold
    target (`[prompt (P) | target (A)]`), `target_len` still the gold target's length: for a
    reward that scores (prompt, completion) and also reports the task's own reward (a learned
    reward model next to the true one; `split_prompt_target`)."""
    out = dict(batch)
    out["target"] = np.concatenate([np.asarray(batch["prompt"], np.int32),
                                    np.asarray(batch["target"], np.int32)], axis=1)
    return out


def split_prompt_target(target, prompt_width: int, pad_id: int):
    """(prompt, prompt_mask, gold target) of a `prompt_with_target` row block; the prompt's
    mask is its non-pad tokens (left padding with `pad_id`, which no prompt token is)."""
    prompt, gold = target[:, :prompt_width], target[:, prompt_width:]
    return prompt, (prompt != pad_id).astype(jnp.int32), gold

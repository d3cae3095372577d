"""Reward model = the transformer backbone + a scalar value head at the last response token.

    params = {"backbone": <transformer params>, "value_head": {"kernel": [D, 1], "bias": [1]}}
    r(x, y) = w . h_L(x, y)[t_last] + b

`h_L` is the final (normed) hidden state (`forward(..., return_hidden=True)`), `t_last` the column
of the last response token (the eos when the response has one). Rows are `[prompt | response]`:
prompt LEFT-padded to width P (as every batch in rlpt), response RIGHT-padded with a 0/1 mask, so
`t_last = P + sum(response_mask) - 1`. The head is named `value_head` so that rlpt.sharding's
rules place it (kernel's d_model axis over fsdp, the rest replicated).

`reward_model_reward` turns a trained RM (a frozen model of the train state) into a reward with
the RL step's signature `fn(frozen, tokens, mask, target, target_len) -> (rewards [N], aux)`.
"""
from typing import Dict

import jax
import jax.numpy as jnp

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import forward, init_params
from rlpt.rewards.prompt_target import prompt_from_target, split_prompt_target
from rlpt.rewards.proxy import truth_aux


def init_reward_model(model_cfg: ModelConfig, rng: jax.Array, backbone=None) -> Dict:
    """RM params: `backbone` (e.g. the SFT policy's params, copied) or a fresh random init, and a
    value head with a small random kernel (std 1/sqrt(D) * 0.1) and zero bias, so r ~ 0 at start."""
    k_bb, k_head = jax.random.split(rng)
    if backbone is None:
        backbone = init_params(model_cfg, k_bb)
    else:
        backbone = jax.tree_util.tree_map(jnp.array, backbone)  # a copy, never an alias
    d = model_cfg.d_model
    kernel = jax.random.normal(k_head, (d, 1), jnp.float32) * (0.1 / jnp.sqrt(d))
    return {"backbone": backbone,
            "value_head": {"kernel": kernel, "bias": jnp.zeros((1,), jnp.float32)}}


def score(model_cfg: ModelConfig, rm_params, prompt, prompt_mask, response, response_mask):
    """Scalar rewards `[N]` of `[prompt (N, P) left-padded | response (N, R) right-padded]` rows.

    An empty response (mask all 0) is read at the last prompt token.
    """
    p = prompt.shape[1]
    tokens = jnp.concatenate([prompt, response], axis=1).astype(jnp.int32)
    valid = jnp.concatenate([prompt_mask, response_mask], axis=1).astype(bool)
    _, hidden = forward(model_cfg, rm_params["backbone"], tokens, valid, return_hidden=True)
    last = p + jnp.sum(response_mask > 0, axis=1).astype(jnp.int32) - 1  # [N]
    h = jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0].astype(jnp.float32)
    head = rm_params["value_head"]
    return (h @ head["kernel"])[:, 0] + head["bias"][0]


def score_groups(model_cfg: ModelConfig, rm_params, prompt, prompt_mask, responses, masks):
    """Rewards `[B, K]` of K responses per prompt (`responses`, `masks`: `[B, K, R]`)."""
    b, k, r = responses.shape
    rep = lambda x: jnp.repeat(x, k, axis=0)
    out = score(model_cfg, rm_params, rep(prompt), rep(prompt_mask),
                responses.reshape(b * k, r), masks.reshape(b * k, r))
    return out.reshape(b, k)


def reward_model_reward(model_cfg: ModelConfig, role: str = "reward_model",
                        prompt_in_target: bool = True, bos_id: int = 1):
    """A trained RM as an RL reward with the step's reward signature: `fn(frozen, tokens [N,T],
    mask [N,T], target, target_len) -> (rewards [N] float32, aux)` (rlpt.step.StepSpec.reward).

    The RM params are read from `frozen[role]`, a frozen model of the train state: an argument
    of the jitted step, placed on the mesh like every model of the state (not a closed-over
    constant); its ModelConfig is `model_cfg` (the step's `models[role]`).

    Limitation: the RL step does not pass the prompt. With `prompt_in_target=True` (default) the
    batch must carry the prompt in `target`/`target_len` (build it with
    rlpt.rewards.prompt_target.prompt_as_target), and the RM scores `[prompt | completion]` as
    it was trained. With False the RM scores `[bos | completion]` (prompt-free; only meaningful
    for an RM trained that way). aux: `rm_score` (the raw r).
    """
    def reward(frozen, tokens, mask, target, target_len):
        if prompt_in_target:
            prompt, pmask = prompt_from_target(jnp.asarray(target, jnp.int32),
                                               jnp.asarray(target_len, jnp.int32))
        else:
            prompt = jnp.full((tokens.shape[0], 1), bos_id, jnp.int32)
            pmask = jnp.ones_like(prompt)
        r = score(model_cfg, frozen[role], prompt, pmask, tokens, (mask > 0).astype(jnp.int32))
        return r.astype(jnp.float32), {"rm_score": r}

    return reward


def reward_model_and_task_reward(model_cfg: ModelConfig, task_reward, prompt_width: int,
                                 pad_id: int, role: str = "reward_model"):
    """A trained RM as the RL reward, with the task's own reward beside it: the batch carries
    `[prompt | gold target]` in `target` (rlpt.rewards.prompt_target.prompt_with_target). The
    rewards are the RM's scores of `[prompt | completion]`; aux: `rm_score`, `true_reward` (the
    task reward, not optimised) and `correct` (true reward > 0.5, so the step's logged
    `accuracy` is the task's accuracy): a proxy reward and the truth side by side, as reward
    over-optimisation studies need (Gao et al., arXiv 2210.10760)."""
    def reward(frozen, tokens, mask, target, target_len):
        prompt, pmask, gold = split_prompt_target(jnp.asarray(target, jnp.int32), prompt_width,
                                                  pad_id)
        r = score(model_cfg, frozen[role], prompt, pmask, tokens, (mask > 0).astype(jnp.int32))
        true, _ = task_reward(tokens, mask, gold, target_len)
        return r.astype(jnp.float32), {"rm_score": r, **truth_aux(true)}

    return reward

"""MGRPO (multi-layer GRPO, arXiv:2506.04746) [2nd]: layer-2 self-correction prompts.

Layer 2 takes `layer2_per_prompt = k` of the G layer-1 responses of each prompt (the first k;
samples of a group are exchangeable, so this is a uniform choice) and builds
`q + response (stop tokens removed) + layer2_instruction` (a fixed token sequence from config),
packed right. The step samples G corrections per layer-2 prompt, rewards each with the task
reward of its own completion, computes GRPO advantages within each layer-2 group, and the loss
sums both layers (`layer2_coef`, 1.0 = the plain sum). k = G uses every layer-1 response.
"""
import jax.numpy as jnp

from rlpt.algorithms.common import fixed_tokens, not_stop, pack


def layer2_prompts(prompt, prompt_mask, tokens_NT, mask_NT, group_size, k, instruction_ids,
                   stop_tokens, pad_id):
    """-> (prompts [B*k, P+T+I], mask int32); row b*k + j continues response j of prompt b."""
    B, G = prompt.shape[0], group_size
    T = tokens_NT.shape[1]
    pick = lambda x: x.reshape(B, G, T)[:, :k].reshape(B * k, T)
    resp = pick(tokens_NT).astype(jnp.int32)
    rvalid = pick(mask_NT).astype(bool) & not_stop(resp, stop_tokens)
    instr = fixed_tokens(instruction_ids, B * k)
    toks = jnp.concatenate([jnp.repeat(prompt, k, axis=0).astype(jnp.int32), resp, instr], axis=1)
    val = jnp.concatenate([jnp.repeat(prompt_mask, k, axis=0).astype(bool), rvalid,
                           jnp.ones(instr.shape, bool)], axis=1)
    toks, val = pack(toks, val, "right", pad_id)
    return toks, val.astype(jnp.int32)

"""Self-correction prompts (MGRPO, arXiv:2506.04746): `q + response (stop tokens removed) +
instruction` (a fixed token sequence from config), packed right. MGRPO's layer 2 trains on them
(rlpt.algorithms.mgrpo); the evaluation measures any policy's greedy second attempt with them
(`eval.self_correction=True`, rlpt.evaluation)."""
import jax.numpy as jnp

from rlpt.algorithms.common import fixed_tokens, not_stop, pack
from rlpt.sampling import sample


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


def self_correction_rewards(model_cfg, params, batch, reward, instruction_ids, scfg, rng,
                            first=None):
    """Greedy self-correction of any policy on `batch` (prompt, prompt_mask, target, target_len):
    the first attempt (`first`, a SampleOutput of `scfg` on the batch's prompts when the caller
    has it, else decoded here), the layer-2 prompt `layer2_prompts(.., group_size=1, k=1, ..)`
    and the second attempt, decoded with `scfg` (greedy, one sample). `reward(tokens, mask,
    target, target_len) -> (rewards [B], aux)`, the task reward. Pure; call under jit.
    -> (first-attempt rewards [B], second-attempt rewards [B], second SampleOutput)."""
    prompt, pmask = batch["prompt"], batch["prompt_mask"]
    if first is None:
        first = sample(model_cfg, params, prompt, pmask, rng, scfg)
    r1, _ = reward(first.tokens, first.mask, batch["target"], batch["target_len"])
    prompt2, pmask2 = layer2_prompts(prompt, pmask, first.tokens, first.mask, 1, 1,
                                     instruction_ids, scfg.stop_tokens, scfg.pad_id)
    second = sample(model_cfg, params, prompt2, pmask2, rng, scfg)
    r2, _ = reward(second.tokens, second.mask, batch["target"], batch["target_len"])
    return r1.astype(jnp.float32), r2.astype(jnp.float32), second


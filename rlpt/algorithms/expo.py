"""ExP-GRPO / ExPO (arXiv:2507.02834) [2nd]: self-explanations conditioned on the gold answer.

Inside the step, for each prompt q with gold solution a* (the task's `solution` tokens; for the
arithmetic tasks the answer digits and eos):

1. the answer-conditioned prompt `q + expl_prefix + a* (stop tokens removed) + expl_suffix`
   (fixed token sequences from config) is packed to the right and `expl_samples` explanations c~
   of at most `expl_max_tokens` tokens are sampled from the current policy;
2. the scored sequence is `q | c~ (its stop token removed) + a* (with its eos)`, i.e. the
   explanation and the answer WITHOUT the answer in the context; `sft_mask` selects c~ and a*.
   The loss adds `sft_coef * mean log pi(c~, a* | q)` (rlpt.losses.policy.exp_grpo_loss).
"""
import jax.numpy as jnp

from rlpt.algorithms.common import fixed_tokens, not_stop, pack


def answer_conditioned_prompt(prompt, prompt_mask, solution, solution_mask, prefix_ids,
                              suffix_ids, stop_tokens, pad_id):
    """`[q | prefix | a* without stop tokens | suffix]` packed right -> (tokens, mask int32)."""
    B = prompt.shape[0]
    ans_valid = solution_mask.astype(bool) & not_stop(solution, stop_tokens)
    pre, suf = fixed_tokens(prefix_ids, B), fixed_tokens(suffix_ids, B)
    toks = jnp.concatenate([prompt, pre, solution, suf], axis=1).astype(jnp.int32)
    val = jnp.concatenate([prompt_mask.astype(bool), jnp.ones(pre.shape, bool), ans_valid,
                           jnp.ones(suf.shape, bool)], axis=1)
    toks, val = pack(toks, val, "right", pad_id)
    return toks, val.astype(jnp.int32)


def scored_explanations(prompt, prompt_mask, expl_tokens, expl_mask, solution, solution_mask,
                        n_expl, stop_tokens, pad_id):
    """Rows `[q | c~ + a*]` for teacher forcing: (tokens [B*E, P+Te+S], valid, sft_mask
    [B*E, Te+S] float). `expl_*` are [B*E, Te] (E = n_expl samples per prompt, contiguous)."""
    rep = lambda x: jnp.repeat(x, n_expl, axis=0)
    c_valid = expl_mask.astype(bool) & not_stop(expl_tokens, stop_tokens)
    comp = jnp.concatenate([expl_tokens, rep(solution)], axis=1).astype(jnp.int32)
    cval = jnp.concatenate([c_valid, rep(solution_mask).astype(bool)], axis=1)
    comp, cval = pack(comp, cval, "left", pad_id)
    tokens = jnp.concatenate([rep(prompt).astype(jnp.int32), comp], axis=1)
    valid = jnp.concatenate([rep(prompt_mask).astype(bool), cval], axis=1)
    return tokens, valid, cval.astype(jnp.float32)

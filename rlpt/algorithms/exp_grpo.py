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
import dataclasses

import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm, flatten_prefixed, policy_loss_batch
from rlpt.algorithms.common import fixed_tokens, not_stop, pack
from rlpt.logprobs import rows_logprobs
from rlpt.losses.policy import clip_objective, resolve
from rlpt.losses.supervised import sft_nll
from rlpt.sampling import sample
from rlpt.state import model_params


DEFAULTS = dict(beta=0.04, sft_coef=0.1,  # sft_coef (the ExPO beta): not in spec
                sft_loss_agg="seq_mean_token_sum", sft_anneal_steps=0, expl_prefix_ids=(),
                expl_suffix_ids=(), expl_samples=1)
DYNAMIC = frozenset({"sft_coef"})


@registry.register("loss", "exp_grpo")
def exp_grpo_loss(batch, cfg):
    """ExP-GRPO / ExPO (arXiv:2507.02834) [2nd]: `J = J_GRPO + beta * mean log pi(c~, a* | q)` on
    self-explanations (`sft_logp`, `sft_mask`: log-probs scored without the answer in context).
    Implemented reading: the sequence log-likelihood (sum over tokens) averaged over explanations
    (`sft_loss_agg="seq_mean_token_sum"`; alternative "token_mean"). beta = cfg.sft_coef, linearly
    annealed to 0 over `sft_anneal_steps` (0 = constant)."""
    c = resolve(cfg, "exp_grpo", DEFAULTS)
    loss_rl, metrics = clip_objective(batch, c)
    loglik = -sft_nll(batch["sft_logp"], batch["sft_mask"], c.sft_loss_agg)
    coef = c.sft_coef * jnp.ones_like(loglik)
    if c.sft_anneal_steps:
        frac = jnp.asarray(batch.get("step", 0)) / c.sft_anneal_steps
        coef = coef * jnp.clip(1.0 - frac, 0.0, 1.0)
    loss = loss_rl - coef * loglik
    metrics.update(rl_loss=loss_rl, expl_loglik=loglik, sft_coef=coef, loss=loss)
    return loss, metrics



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


def extras(spec, state, batch, out, data, raw_N, c, key):
    """Samples the self-explanations (step 1 above) and builds the scored rows (step 2) as
    per-prompt arrays `expl_*` [B, E, ...]."""
    stop, pad = spec.scfg.stop_tokens, spec.scfg.pad_id
    scfg = dataclasses.replace(spec.scfg, num_samples=int(c.get("expl_samples", 1)),
                               max_new_tokens=int(c.get("expl_max_tokens",
                                                        spec.scfg.max_new_tokens)))
    E, B = scfg.num_samples, batch["prompt"].shape[0]
    prompt, pmask = answer_conditioned_prompt(
        batch["prompt"], batch["prompt_mask"], batch["solution"], batch["solution_mask"],
        c.get("expl_prefix_ids", ()), c.get("expl_suffix_ids", ()), stop, pad)
    eo = sample(spec.model_cfg, model_params(state.params, state.frozen), prompt, pmask,
                jax.random.fold_in(key, 1), scfg)
    tokens, valid, smask = scored_explanations(
        batch["prompt"], batch["prompt_mask"], eo.tokens, eo.mask, batch["solution"],
        batch["solution_mask"], E, stop, pad)
    d = {"expl_tokens": tokens, "expl_valid": valid, "expl_mask": smask}
    expl_len = jnp.sum(eo.mask * not_stop(eo.tokens, stop), axis=1)
    return data, {k: v.reshape((B, E) + v.shape[1:]) for k, v in d.items()}, {
        "expl_len": expl_len.astype(jnp.float32).mean(),
        "expl_sft_tokens": jnp.sum(smask, axis=1).mean()}


def loss_batch(spec, params, mb, mbp, c):
    lb = policy_loss_batch(spec, params, mb, c)
    ex = flatten_prefixed(mbp, "expl_")
    lb.update(sft_logp=rows_logprobs(spec.model_cfg, params, ex, spec.scfg.temperature)[0],
              sft_mask=ex["mask"])
    return lb


ALGORITHM = registry.register("algorithm", "exp_grpo")(Algorithm(
    "exp_grpo", exp_grpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC,
    extras=extras, loss_batch=loss_batch))

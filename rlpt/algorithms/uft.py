"""UFT (arXiv:2505.16984) [code]: hints are the first l chunks of the gold solution.

Per prompt: the hintable part of the solution is its tokens before eos (`solution_mask` without
stop tokens), `h_len` tokens; it is split into `n = min(max_hint_chunks, h_len)` chunks with
boundaries `ceil(h_len j / n)`; `l ~ Binomial(n, p(step))` (rlpt.losses.policy:
uft_sample_hint_length, cosine schedule `uft_hint_prob`), and the first `ceil(h_len l / n)`
solution tokens are appended to the prompt (packed right). `hint_pos` marks them in the new
prompt; the loss adds `sft_coef * NLL` over them (log-probs from the same forward pass as the
completion, at the sampling temperature). All G samples of a prompt share its hint.

Reward reading (a choice, `hint_in_reward`, default True): the task reward is computed on
`hint + completion`, because the completion continues the hinted solution (for the arithmetic
tasks the hint is a prefix of the answer itself); False rewards the completion alone.
"""
import math

import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm, iteration_key, policy_loss_batch
from rlpt.algorithms.common import not_stop, pack
from rlpt.logprobs import sequence_outputs
from rlpt.losses.policy import clip_objective, resolve
from rlpt.losses.supervised import sft_nll


DEFAULTS = dict(beta=0.04, sft_coef=1e-3, sft_loss_agg="token_mean", hint_p_low=0.05,
                hint_p_high=0.95, hint_steps=300, max_hint_chunks=5, hint_in_reward=True)
DYNAMIC = frozenset({"sft_coef", "hint_p_low", "hint_p_high"})


def uft_hint_prob(step, p_low=0.05, p_high=0.95, hint_steps=300):
    """UFT (arXiv:2505.16984) cosine hint schedule:
    `p(t) = p_low + 0.5 (p_high - p_low)(1 + cos(pi t / T_hint))` for t <= T_hint, else 0."""
    t = jnp.asarray(step) * 1.0
    p = p_low + 0.5 * (p_high - p_low) * (1.0 + jnp.cos(math.pi * t / hint_steps))
    return jnp.where(t <= hint_steps, p, 0.0)


def uft_sample_hint_length(key, n_chunks, step, p_low=0.05, p_high=0.95, hint_steps=300,
                           max_chunks=5):
    """UFT hint length `l ~ Binomial(n_chunks, p(step))` (n_chunks <= max_chunks, any shape), drawn
    as a sum of `max_chunks` Bernoulli(p) of which the first `n_chunks` count."""
    n_chunks = jnp.asarray(n_chunks)
    p = uft_hint_prob(step, p_low, p_high, hint_steps)
    u = jax.random.uniform(key, n_chunks.shape + (max_chunks,))
    valid = jnp.arange(max_chunks) < n_chunks[..., None]
    return jnp.sum((u < p) & valid, axis=-1)


@registry.register("loss", "uft")
def uft_loss(batch, cfg):
    """UFT (arXiv:2505.16984) [code]: GRPO loss + `lambda_sft * mean NLL over hint tokens`, the
    hint tokens (in the prompt) given as `sft_logp`/`sft_mask` (token_mean; lambda_sft =
    cfg.sft_coef = 1e-3). Hint lengths come from `uft_sample_hint_length`."""
    c = resolve(cfg, "uft", DEFAULTS)
    loss_rl, metrics = clip_objective(batch, c)
    nll = sft_nll(batch["sft_logp"], batch["sft_mask"], c.sft_loss_agg)
    loss = loss_rl + c.sft_coef * nll
    metrics.update(rl_loss=loss_rl, hint_nll=nll, loss=loss)
    return loss, metrics



def hint_batch(key, step, batch, algo, stop_tokens, pad_id):
    """Returns the batch with the hinted prompt, `hint_pos` [B, P+S] (1 on hint tokens of the new
    prompt), `hint_tokens` and `hint_mask` [B, S] (the hint as a prefix of the solution)."""
    sol, smask = batch["solution"], batch["solution_mask"]
    S = sol.shape[1]
    hintable = smask.astype(bool) & not_stop(sol, stop_tokens)
    h_len = jnp.sum(hintable, axis=1)
    max_chunks = int(algo.get("max_hint_chunks", 5))
    n = jnp.minimum(h_len, max_chunks)
    p_low, p_high = algo.get("hint_p_low", 0.05), algo.get("hint_p_high", 0.95)
    hint_steps = int(algo.get("hint_steps", 300))
    l = uft_sample_hint_length(key, n, step, p_low, p_high, hint_steps, max_chunks)
    h = jnp.where(n > 0, (h_len * l + n - 1) // jnp.maximum(n, 1), 0)
    hint = (jnp.arange(S)[None, :] < h[:, None]) & hintable
    toks = jnp.concatenate([batch["prompt"], sol], axis=1).astype(jnp.int32)
    val = jnp.concatenate([batch["prompt_mask"].astype(bool), hint], axis=1)
    is_hint = jnp.concatenate([jnp.zeros(batch["prompt"].shape, bool), hint], axis=1)
    toks, val, is_hint = pack(toks, val, "right", pad_id, (is_hint,))
    return dict(batch, prompt=toks, prompt_mask=val.astype(batch["prompt_mask"].dtype),
                hint_pos=is_hint.astype(jnp.float32), hint_tokens=sol.astype(jnp.int32),
                hint_mask=hint.astype(jnp.int32))


def hinted_completions(batch, tokens_NT, mask_NT, group_size, pad_id):
    """`hint + completion` rows (packed left) for the reward: (tokens [N, S+T], mask float)."""
    rep = lambda x: jnp.repeat(x, group_size, axis=0)
    toks = jnp.concatenate([rep(batch["hint_tokens"]), tokens_NT], axis=1)
    val = jnp.concatenate([rep(batch["hint_mask"]).astype(bool), mask_NT.astype(bool)], axis=1)
    toks, val = pack(toks, val, "left", pad_id)
    return toks, val.astype(jnp.float32)


def before_rollout(spec, state, batch, c):
    return hint_batch(iteration_key(state, 3), state.step, batch, c, spec.scfg.stop_tokens,
                      spec.scfg.pad_id)


def reward_inputs(spec, batch, tokens, mask, c):
    if not c.get("hint_in_reward", True):
        return tokens, mask
    return hinted_completions(batch, tokens, mask, spec.G, spec.scfg.pad_id)


def extras(spec, state, batch, out, data, raw_N, c, key):
    data = dict(data, hint_pos=jnp.repeat(batch["hint_pos"], spec.G, axis=0))
    return data, {}, {
        "hint_prob": uft_hint_prob(state.step, c.get("hint_p_low", 0.05),
                                   c.get("hint_p_high", 0.95), int(c.get("hint_steps", 300))),
        "hint_tokens": jnp.sum(batch["hint_mask"], axis=1).astype(jnp.float32).mean()}


def loss_batch(spec, params, mb, mbp, c):
    """The policy batch plus the NLL inputs of the hint tokens, from one forward pass."""
    width = mb["tokens"].shape[1] - mb["mask"].shape[1]
    o = sequence_outputs(spec.model_cfg, params, mb["tokens"], mb["valid"], width,
                         spec.scfg.temperature, with_entropy=spec.needs("entropy"),
                         with_prompt=True)
    lb = policy_loss_batch(spec, params, mb, c, o["logp"], o["entropy"])
    lb.update(sft_logp=o["prompt_logp"], sft_mask=mb["hint_pos"][:, 1:])
    return lb


ALGORITHM = registry.register("algorithm", "uft")(Algorithm(
    "uft", uft_loss, defaults=DEFAULTS, dynamic=DYNAMIC, before_rollout=before_rollout,
    reward_inputs=reward_inputs, extras=extras, loss_batch=loss_batch))

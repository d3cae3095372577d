"""Teacher-forced log-probs of completions: the training-side forward passes.

Rows are `[prompt (width P, left-padded) | completion (T)]`; the logits at columns P-1 .. L-2
predict the completion tokens and every log-prob is taken from `logits / temperature`, the
sampling temperature, so the behaviour policy in a ratio is the distribution actually sampled.

With `ModelConfig.logits_chunk` > 0 the `[N, T, V]` logits never exist whole: the model returns
its final hidden states and `chunked_logprobs` computes the log-probs (and entropies)
`logits_chunk` columns at a time, optionally `vocab_chunk` vocabulary columns at a time, each
chunk recomputed in the backward pass. Values and gradients equal the unchunked path's.
"""
import jax
import jax.numpy as jnp

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import (KeyMask, Transformer, compute_dtype, forward,
                                     forward_hidden, positions_from_mask, token_logprobs,
                                     unembedding)
from rlpt.sampling import prefill


def shared_prompt_logits(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                         group_size: int, head: bool = True):
    """The logits [N, T, V] that predict the completion tokens, computing each prompt ONCE per
    group: rows i*G .. i*G+G-1 must share their prompt (as the G samples of a prompt do).

    Same math as `forward(...)[:, P-1:-1]`: the prompts are prefilled (the sampler's prefill,
    `group_size` times fewer prompt rows), then all T completion tokens run in one pass against
    the repeated prompt K/V with the same positions and causal mask; gradients reach the prompt
    activations through the repeat (a sum over the group). `head=False`: the final hidden
    states [N, T, D] at those columns instead (the first one the prefill's last column's).
    """
    P, G = prompt_width, group_size
    T = tokens_NL.shape[1] - P
    model = Transformer(model_cfg)
    apply_fn = lambda p, *a: model.apply({"params": p}, *a, head=head)
    last_NV, cache, _, key_valid_NP = prefill(model_cfg, apply_fn, params, tokens_NL[::G, :P],
                                              valid_NL[::G, :P], G, T)
    key_valid_NL = jnp.concatenate([key_valid_NP, valid_NL[:, P:].astype(bool)], axis=1)
    positions = positions_from_mask(valid_NL)[:, P:]
    # completion column t sits at key slot P + t: it sees the valid prompt and completion <= t
    logits_NTV, _ = apply_fn(params, tokens_NL[:, P:], positions, KeyMask(key_valid_NL, P),
                             cache, P)
    return jnp.concatenate([last_NV[:, None], logits_NTV[:, :-1]], axis=1)


def _vocab_logits(h_NCD, w_VD, temperature: float, dt) -> jax.Array:
    """`logits / temperature` [N, C, V'] in float32 of hidden states and unembedding rows, the
    matmul in the compute dtype `dt` as the model's head computes it."""
    logits = jnp.einsum("ncd,vd->ncv", h_NCD.astype(dt), w_VD.astype(dt))
    return logits.astype(jnp.float32) / temperature


def _whole_vocab_stats(h_NCD, targets_NC, w_VD, temperature, dt, with_entropy):
    """(log-prob at the target, entropy or None) [N, C] of one chunk over the whole vocabulary,
    the formulas of `token_logprobs` and the unchunked entropy."""
    logp_all = jax.nn.log_softmax(_vocab_logits(h_NCD, w_VD, temperature, dt), axis=-1)
    logp = jnp.take_along_axis(logp_all, targets_NC[..., None], axis=-1)[..., 0]
    ent = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1) if with_entropy else None
    return logp, ent


def _vocab_chunked_stats(h_NCD, targets_NC, w_VD, temperature, dt, with_entropy, vchunk: int):
    """`_whole_vocab_stats` with the vocabulary in chunks of `vchunk` (a `lax.scan`, each step
    under `jax.checkpoint`): the log-sum-exp accumulated online (running max m, sum
    s = sum exp(z - m), and for the entropy t = sum exp(z - m) z, rescaled when m grows, as in
    arXiv 2112.05682 sec. 3), then log p(target) = z_target - lse and the entropy
    H = lse - t / s (= -sum p log p). m is a stabiliser (no gradient)."""
    V, D = w_VD.shape
    N, C = targets_NC.shape
    w_blocks = w_VD.reshape(V // vchunk, vchunk, D)

    def step(carry, xs):
        m, s, t, z_target = carry
        j, w = xs
        z = _vocab_logits(h_NCD, w, temperature, dt)                      # [N, C, vchunk]
        m_new = jax.lax.stop_gradient(jnp.maximum(m, jnp.max(z, axis=-1)))
        e, corr = jnp.exp(z - m_new[..., None]), jnp.exp(m - m_new)
        hit = (j * vchunk + jnp.arange(vchunk)) == targets_NC[..., None]
        z_target = z_target + jnp.sum(jnp.where(hit, z, 0.0), axis=-1)
        if with_entropy:
            t = t * corr + jnp.sum(e * z, axis=-1)
        return (m_new, s * corr + jnp.sum(e, axis=-1), t, z_target), None

    zeros = jnp.zeros((N, C), jnp.float32)
    init = (jnp.full((N, C), -jnp.inf), zeros, zeros, zeros)
    (m, s, t, z_target), _ = jax.lax.scan(jax.checkpoint(step), init,
                                          (jnp.arange(V // vchunk), w_blocks))
    lse = m + jnp.log(s)
    return z_target - lse, (lse - t / s if with_entropy else None)


def chunked_logprobs(model_cfg: ModelConfig, params, hidden_NTD, targets_NT, temperature: float,
                     with_entropy: bool = False):
    """log softmax(logits / temperature) at `targets_NT` and (optionally) the entropy [N, T],
    from the final hidden states [N, T, D], without the [N, T, V] logits: `logits_chunk` columns
    of every row at a time (`lax.map`, each chunk under `jax.checkpoint`, so the backward pass
    recomputes a chunk's logits instead of storing them), over the whole vocabulary or
    `vocab_chunk` columns of it at a time. T need not be a multiple of the chunk (padded)."""
    N, T, D = hidden_NTD.shape
    C, dt = model_cfg.logits_chunk, compute_dtype(model_cfg)
    n = -(-T // C)
    pad = ((0, 0), (0, n * C - T))
    h = jnp.pad(hidden_NTD, pad + ((0, 0),)).reshape(N, n, C, D).swapaxes(0, 1)
    tg = jnp.pad(targets_NT, pad).reshape(N, n, C).swapaxes(0, 1)
    w_VD = unembedding(model_cfg, params)
    if model_cfg.vocab_chunk:
        stats = lambda h, tg, w: _vocab_chunked_stats(h, tg, w, temperature, dt, with_entropy,
                                                      model_cfg.vocab_chunk)
    else:
        stats = lambda h, tg, w: _whole_vocab_stats(h, tg, w, temperature, dt, with_entropy)
    stats = jax.checkpoint(stats)
    logp, ent = jax.lax.map(lambda xs: stats(xs[0], xs[1], w_VD), (h, tg))   # [n, N, C]
    unchunk = lambda a: a.swapaxes(0, 1).reshape(N, n * C)[:, :T]
    return unchunk(logp), (unchunk(ent) if with_entropy else None)


def completion_hidden(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                      group_size: int = 1):
    """The final hidden states [N, T, D] at the columns predicting the completion tokens (with
    `group_size` > 1, each prompt computed once: `shared_prompt_logits`)."""
    if group_size > 1:
        return shared_prompt_logits(model_cfg, params, tokens_NL, valid_NL, prompt_width,
                                    group_size, head=False)
    return forward_hidden(model_cfg, params, tokens_NL, valid_NL)[:, prompt_width - 1:-1]


def completion_logprobs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                        temperature: float, with_entropy: bool = False, group_size: int = 1):
    """Teacher-forced log-probs (and entropies) of completion tokens, from logits / temperature.

    tokens_NL = [prompt (width P, left-padded) | completion (T)]; logits at columns P-1 .. L-2
    predict the completion tokens. With `group_size` G > 1 the rows come in groups of G sharing
    a prompt, and each prompt is computed once (`shared_prompt_logits`). With
    `model_cfg.logits_chunk` the logits are chunked (`chunked_logprobs`).
    """
    if model_cfg.logits_chunk:
        hidden = completion_hidden(model_cfg, params, tokens_NL, valid_NL, prompt_width,
                                   group_size)
        return chunked_logprobs(model_cfg, params, hidden, tokens_NL[:, prompt_width:],
                                temperature, with_entropy)
    if group_size > 1:
        logits = shared_prompt_logits(model_cfg, params, tokens_NL, valid_NL, prompt_width,
                                      group_size)
    else:
        logits = forward(model_cfg, params, tokens_NL, valid_NL)[:, prompt_width - 1:-1]
    logp = token_logprobs(logits, tokens_NL[:, prompt_width:], temperature)
    if not with_entropy:
        return logp, None
    lp_all = jax.nn.log_softmax(logits / temperature, axis=-1)
    return logp, -jnp.sum(jnp.exp(lp_all) * lp_all, axis=-1)


def sequence_outputs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                     temperature: float, with_entropy=False, with_hidden=False, with_prompt=False):
    """`completion_logprobs` plus what PPO and UFT need from the same forward pass.

    Returns a dict: `logp` [N, T], `entropy` [N, T] (or None), `hidden` [N, T, D] (final hidden
    state at the columns predicting the completion, or None), `prompt_logp` [N, P-1] (log-prob
    of prompt token j+1 given the columns up to j, or None).
    """
    if model_cfg.logits_chunk:
        return _chunked_sequence_outputs(model_cfg, params, tokens_NL, valid_NL, prompt_width,
                                         temperature, with_entropy, with_hidden, with_prompt)
    if with_hidden:
        logits, hidden = forward(model_cfg, params, tokens_NL, valid_NL, return_hidden=True)
        hidden = hidden[:, prompt_width - 1:-1]
    else:
        logits, hidden = forward(model_cfg, params, tokens_NL, valid_NL), None
    out = {"hidden": hidden, "entropy": None, "prompt_logp": None}
    if with_prompt:
        lp = token_logprobs(logits[:, :-1], tokens_NL[:, 1:], temperature)
        out["logp"], out["prompt_logp"] = lp[:, prompt_width - 1:], lp[:, :prompt_width - 1]
    else:
        out["logp"] = token_logprobs(logits[:, prompt_width - 1:-1], tokens_NL[:, prompt_width:],
                                     temperature)
    if with_entropy:
        lp_all = jax.nn.log_softmax(logits[:, prompt_width - 1:-1] / temperature, axis=-1)
        out["entropy"] = -jnp.sum(jnp.exp(lp_all) * lp_all, axis=-1)
    return out


def _chunked_sequence_outputs(model_cfg, params, tokens_NL, valid_NL, prompt_width, temperature,
                              with_entropy, with_hidden, with_prompt):
    """`sequence_outputs` from the hidden states, the logits chunked (`chunked_logprobs`)."""
    P = prompt_width
    hidden = forward_hidden(model_cfg, params, tokens_NL, valid_NL)
    logp, entropy = chunked_logprobs(model_cfg, params, hidden[:, P - 1:-1], tokens_NL[:, P:],
                                     temperature, with_entropy)
    out = {"logp": logp, "entropy": entropy, "prompt_logp": None,
           "hidden": hidden[:, P - 1:-1] if with_hidden else None}
    if with_prompt:
        out["prompt_logp"] = chunked_logprobs(model_cfg, params, hidden[:, :P - 1],
                                              tokens_NL[:, 1:P], temperature)[0]
    return out


def rows_logprobs(model_cfg: ModelConfig, params, rows, temperature, with_entropy=False):
    """`completion_logprobs` of a dict of rows (`tokens`, `valid` [n, P+T], `mask` [n, T]);
    the prompt width is `P = L - T`."""
    width = rows["tokens"].shape[1] - rows["mask"].shape[1]
    return completion_logprobs(model_cfg, params, rows["tokens"], rows["valid"], width,
                               temperature, with_entropy=with_entropy)

"""Teacher-forced log-probs of completions: the training-side forward passes.

Rows are `[prompt (width P, left-padded) | completion (T)]`; the logits at columns P-1 .. L-2
predict the completion tokens and every log-prob is taken from `logits / temperature`, the
sampling temperature, so the behaviour policy in a ratio is the distribution actually sampled.
"""
import jax
import jax.numpy as jnp

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import Transformer, forward, positions_from_mask, token_logprobs
from rlpt.sampling import prefill


def shared_prompt_logits(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                         group_size: int):
    """The logits [N, T, V] that predict the completion tokens, computing each prompt ONCE per
    group: rows i*G .. i*G+G-1 must share their prompt (as the G samples of a prompt do).

    Same math as `forward(...)[:, P-1:-1]`: the prompts are prefilled (the sampler's prefill,
    `group_size` times fewer prompt rows), then all T completion tokens run in one pass against
    the repeated prompt K/V with the same positions and causal mask; gradients reach the prompt
    activations through the repeat (a sum over the group).
    """
    P, G = prompt_width, group_size
    T = tokens_NL.shape[1] - P
    model = Transformer(model_cfg)
    apply_fn = lambda p, *a: model.apply({"params": p}, *a)
    last_NV, cache, _, key_valid_NP = prefill(model_cfg, apply_fn, params, tokens_NL[::G, :P],
                                              valid_NL[::G, :P], G, T)
    key_valid_NL = jnp.concatenate([key_valid_NP, valid_NL[:, P:].astype(bool)], axis=1)
    causal_TL = jnp.concatenate([jnp.ones((T, P), bool), jnp.tril(jnp.ones((T, T), bool))], 1)
    positions = positions_from_mask(valid_NL)[:, P:]
    logits_NTV, _ = apply_fn(params, tokens_NL[:, P:], positions,
                             causal_TL[None] & key_valid_NL[:, None, :], cache, P)
    return jnp.concatenate([last_NV[:, None], logits_NTV[:, :-1]], axis=1)


def completion_logprobs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                        temperature: float, with_entropy: bool = False, group_size: int = 1):
    """Teacher-forced log-probs (and entropies) of completion tokens, from logits / temperature.

    tokens_NL = [prompt (width P, left-padded) | completion (T)]; logits at columns P-1 .. L-2
    predict the completion tokens. With `group_size` G > 1 the rows come in groups of G sharing
    a prompt, and each prompt is computed once (`shared_prompt_logits`).
    """
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


def rows_logprobs(model_cfg: ModelConfig, params, rows, temperature, with_entropy=False):
    """`completion_logprobs` of a dict of rows (`tokens`, `valid` [n, P+T], `mask` [n, T]);
    the prompt width is `P = L - T`."""
    width = rows["tokens"].shape[1] - rows["mask"].shape[1]
    return completion_logprobs(model_cfg, params, rows["tokens"], rows["valid"], width,
                               temperature, with_entropy=with_entropy)

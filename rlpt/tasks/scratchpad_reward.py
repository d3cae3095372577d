"""On-device reward of the scratchpad task (`rlpt.tasks.scratchpad`), plus its host reference.

    reward(completion [N,T] int32, completion_mask [N,T], target [N,A] int32, target_len [N] int32)
        -> (rewards [N] float32, aux: dict of [N] arrays)

Reading rules are those of `rlpt.tasks.synthetic_reward`: only the leading run of
`completion_mask != 0` counts; the *text* is everything before the first eos inside it; the
completion is *terminated* if such an eos exists; an unterminated completion scores 0.

`scratchpad_answer`: the text is a free-form chain of work, then the marker `#`, then the final
answer. The reward reads only what follows the LAST `#` in the text: 1.0 iff that is exactly
`target[:target_len]` (the answer's digit tokens, no leading zeros or extra tokens) and the
completion is terminated. Everything before the last marker (the worked steps, padding, any
rambling, other markers) is ignored.

`target[:, -1]` (the last column, never part of the answer) holds the length of the problem's
worked solution in tokens, eos included (0 when unknown); it is read only for the `excess_*`
metrics below, never for the reward.

aux (each [N]; the step logs the mean over rows as `reward_<name>`):
  * `format_ok`: terminated, has a marker, and one or more digits (only) follow the last one;
  * `response_len`: generated tokens, the eos included (the valid prefix up to and including
    the first eos; the whole valid prefix when unterminated), as `out.lengths` counts them;
  * `response_len_correct` / `response_len_wrong`: the mean `response_len` over the batch's
    correct / incorrect rows, broadcast to every row (so the logged mean over rows is that
    conditional mean; 0 when the batch has no such row). A batch statistic, not a per-row
    quantity: inside a sweep (vmap over runs) it is per run;
  * `excess_len_correct` / `excess_len_wrong`: likewise for `response_len - target[:, -1]`, the
    length beyond the problem's own worked solution (controls for the mix of problem sizes:
    harder problems have longer solutions and fail more often).
"""
from typing import Dict, Tuple

import jax
import jax.numpy as jnp

from rlpt.registry import register
from rlpt.tokenizers import CharTokenizer

_TOK = CharTokenizer()
EOS_ID = _TOK.eos_id
MARK = "#"
MARK_ID = _TOK.stoi[MARK]
DIGIT0_ID = _TOK.stoi["0"]


def _conditional_mean(x, cond):
    """mean of x over rows where cond, broadcast to [N] (0 if no row)."""
    c = cond.astype(jnp.float32)
    m = jnp.sum(x * c) / jnp.maximum(jnp.sum(c), 1.0)
    return jnp.broadcast_to(m, x.shape)


@register("reward", "scratchpad_answer")
def scratchpad_answer_reward(completion, completion_mask, target,
                             target_len) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """1.0 iff the digits after the last `#` before eos are exactly the answer (module doc)."""
    comp = jnp.asarray(completion, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    target_len = jnp.asarray(target_len, jnp.int32)
    t, a = comp.shape[-1], target.shape[-1]
    valid = jnp.cumprod((jnp.asarray(completion_mask) != 0).astype(jnp.int32), axis=-1) > 0
    pos = jnp.arange(t)[None, :]

    is_eos = (comp == EOS_ID) & valid
    terminated = is_eos.any(-1)
    eos_pos = jnp.where(terminated, jnp.argmax(is_eos, axis=-1), t)        # text length
    before_eos = pos < eos_pos[:, None]
    is_mark = (comp == MARK_ID) & before_eos
    has_mark = is_mark.any(-1)
    last_mark = (t - 1) - jnp.argmax(is_mark[:, ::-1], axis=-1)
    start = last_mark + 1                                                  # answer's first token
    in_answer = (pos >= start[:, None]) & before_eos
    digit = (comp >= DIGIT0_ID) & (comp < DIGIT0_ID + 10)
    ans_len = eos_pos - start
    format_ok = terminated & has_mark & (ans_len >= 1) & jnp.all(digit | ~in_answer, axis=-1)

    idx = jnp.clip(start[:, None] + jnp.arange(a)[None, :], 0, t - 1)
    got = jnp.take_along_axis(comp, idx, axis=-1)
    in_target = jnp.arange(a)[None, :] < target_len[:, None]
    match = jnp.all((got == target) | ~in_target, axis=-1)
    correct = terminated & has_mark & (ans_len == target_len) & match

    length = jnp.where(terminated, eos_pos + 1, valid.sum(-1)).astype(jnp.float32)
    excess = length - target[:, -1].astype(jnp.float32)
    aux = {"format_ok": format_ok, "response_len": length,
           "response_len_correct": _conditional_mean(length, correct),
           "response_len_wrong": _conditional_mean(length, ~correct),
           "excess_len_correct": _conditional_mean(excess, correct),
           "excess_len_wrong": _conditional_mean(excess, ~correct)}
    return correct.astype(jnp.float32), aux


def scratchpad_reference(text: str, terminated: bool, answer: str) -> Tuple[float, bool]:
    """Plain-Python reference -> (reward, format_ok) for one completion's text (module doc).

    `text` is what `rlpt.tasks.synthetic_reward.completion_text` returns (special tokens rendered as
    `<pad>` etc., which never contain `#` or only digits)."""
    if not terminated or MARK not in text:
        return 0.0, False
    final = text.rsplit(MARK, 1)[1]
    format_ok = len(final) >= 1 and all(ch in "0123456789" for ch in final)
    return float(final == answer), format_ok

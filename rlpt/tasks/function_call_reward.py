"""On-device rewards of the `function_call` task (rlpt.tasks.function_call): the exact call match
(the task's reward) and ToolRL's fine-grained reward (Qian et al., "ToolRL: Reward is All Tool
Learning Needs", arXiv 2504.13958, section 3.3), for `reward.proxy`.

A completion is calls joined by `|`, then eos: `sum(a=12,b=7)|rev(w=ab)`. A call is a name
(letters), `(`, one or more `key=value` joined by `,`, `)`; keys are letters, values letters or
digits. Names, keys and values of at most `MAX_CHARS` characters are read as integers
(`text_code`: base-64 digits of the CharTokenizer ids), so comparing them is comparing ints. A
completion is *well-formed* when it is terminated, follows that grammar and has at most `MAX_CALLS`
calls of at most `MAX_ARGS` arguments each.

`target` row (written by the task, `gold_row`): `[name, nargs, key_1, value_1, ..., key_K,
value_K]` per gold call, `CALL_WIDTH` ints each, `MAX_CALLS` slots (-1 past the gold calls);
`target_len` is the number of gold calls.

* `function_call` (the task's reward, exact): 1 iff well-formed and the calls equal the gold calls
  in order (names, argument count, keys and values in order).
* `toolrl_fine_grained`: ToolRL's `R = R_format + R_correct`:
  - `R_format` in {0, 1}: well-formed (ToolRL's tags become this task's call grammar; a key
    given twice in one call is not well-formed);
  - `R_correct = 6 * R_match / R_max - 3` in [-3, 3], with `R_match = r_name + r_param + r_value`:
    `r_name` the intersection-over-union of the gold and predicted tool-name lists (counting
    repeats: |G & P| / (|G| + |P| - |G & P|)); each gold call is matched to the predicted call
    of the same name that scores most (the task's gold calls name different tools, so the
    reference code's greedy matching is this maximum), `r_param` the IoU of their key sets and
    `r_value` the number of gold keys whose value the predicted call gives exactly (0 for a
    gold call with no same-name prediction); `R_max = 1 + |G| + sum_j |keys(G_j)|`, the score
    of an exact answer.
  A completion that is not well-formed scores `R_correct = -3` (nothing is parsed), so
  `R` spans [-3, 4]. aux: `format_ok`, `name_iou`, `match_frac` (R_match / R_max), `exact`.

`parse_calls` and `fine_grained_reference` are the same semantics in plain Python (the tests
check the JAX code against them).
"""
import re
from typing import List, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from rlpt.registry import register
from rlpt.tasks.synthetic_reward import valid_prefix
from rlpt.tokenizers import CharTokenizer

MAX_CALLS, MAX_ARGS, MAX_CHARS = 3, 2, 4
CALL_WIDTH = 2 + 2 * MAX_ARGS     # name, nargs, (key, value) x MAX_ARGS
_TOK = CharTokenizer()
_LETTER0, _DIGIT0 = _TOK.stoi["a"], _TOK.stoi["0"]
_OPEN, _CLOSE, _EQ, _COMMA, _BAR = (_TOK.stoi[c] for c in "()=,|")
_EOS = _TOK.eos_id
_NAME, _KEY, _VALUE, _AFTER, _END, _BAD = range(6)   # parser modes


def text_code(text: str) -> int:
    """A name, key or value (<= MAX_CHARS characters) as one int: base-64 digits of its ids."""
    code = 0
    for ch in text:
        code = code * 64 + _TOK.stoi[ch]
    return code


def code_text(code: int) -> str:
    """The text of a `text_code`."""
    chars = []
    while code > 0:
        code, i = divmod(int(code), 64)
        chars.append(_TOK.itos[i])
    return "".join(reversed(chars))


def gold_row(calls) -> List[int]:
    """The `target` row of gold `calls` [(name, [(key, value), ...]), ...] (module doc)."""
    row = []
    for name, args in calls:
        cells = [text_code(name), len(args)]
        for key, value in args:
            cells += [text_code(key), text_code(value)]
        row += cells + [-1] * (CALL_WIDTH - len(cells))
    return row + [-1] * (MAX_CALLS * CALL_WIDTH - len(row))


def _parse_row(tokens, valid):
    """One completion -> (well_formed, calls [MAX_CALLS, CALL_WIDTH] int32, n_calls): a scan
    over the tokens with the grammar's modes; any violation ends in _BAD."""
    def step(carry, x):
        mode, acc, n_chars, key, call, arg, calls = carry
        t, ok = x
        letter = (t >= _LETTER0) & (t < _LETTER0 + 26)
        digit = (t >= _DIGIT0) & (t < _DIGIT0 + 10)
        grow = jnp.where(n_chars < MAX_CHARS, acc * 64 + t, acc)
        long = n_chars >= MAX_CHARS
        c_call, c_arg = jnp.minimum(call, MAX_CALLS - 1), jnp.minimum(arg, MAX_ARGS - 1)
        stored = calls.at[c_call, 2 + 2 * c_arg].set(key).at[c_call, 3 + 2 * c_arg].set(acc)

        # (mode, token) -> next mode; everything not listed is a violation
        name_char = (mode == _NAME) & letter & ~long
        name_open = (mode == _NAME) & (t == _OPEN) & (n_chars > 0)
        key_char = (mode == _KEY) & letter & ~long
        key_eq = (mode == _KEY) & (t == _EQ) & (n_chars > 0)
        val_char = (mode == _VALUE) & (letter | digit) & ~long
        seen_key = jnp.any((calls[c_call, 2::2] == key) & (jnp.arange(MAX_ARGS) < arg))
        val_end = (mode == _VALUE) & ((t == _COMMA) | (t == _CLOSE)) & (n_chars > 0) & (
            arg < MAX_ARGS) & ~seen_key   # a key given twice in one call is a violation
        comma = val_end & (t == _COMMA)
        close = val_end & (t == _CLOSE)
        bar = (mode == _AFTER) & (t == _BAR) & (call < MAX_CALLS)
        eos = (mode == _AFTER) & (t == _EOS)
        char = name_char | key_char | val_char
        new_mode = jnp.select(
            [~ok | (mode >= _END), char, name_open, key_eq, comma, close, bar, eos],
            [mode, mode, _KEY, _VALUE, _KEY, _AFTER, _NAME, _END], _BAD)
        calls = jnp.where(ok & val_end, stored, calls)
        calls = jnp.where(ok & name_open, calls.at[c_call, 0].set(acc), calls)
        calls = jnp.where(ok & close, calls.at[c_call, 1].set(arg + 1), calls)
        key = jnp.where(ok & key_eq, acc, key)
        acc = jnp.where(ok & char, grow, jnp.where(ok & (name_open | key_eq | val_end | bar),
                                                    0, acc))
        n_chars = jnp.where(ok & char, n_chars + 1,
                            jnp.where(ok & (name_open | key_eq | val_end | bar), 0, n_chars))
        arg = jnp.where(ok & comma, arg + 1, jnp.where(ok & (close | bar), 0, arg))
        call = jnp.where(ok & close, call + 1, call)
        return (new_mode, acc, n_chars, key, call, arg, calls), None

    init = (jnp.int32(_NAME), jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0),
            jnp.int32(0), jnp.full((MAX_CALLS, CALL_WIDTH), -1, jnp.int32))
    (mode, _, _, _, call, _, calls), _ = lax.scan(step, init, (tokens, valid))
    return mode == _END, calls, call


def _parse(completion, completion_mask):
    tokens = jnp.asarray(completion, jnp.int32)
    return jax.vmap(_parse_row)(tokens, valid_prefix(completion_mask))


def _exact(ok, calls, n_calls, target, target_len):
    gold = jnp.asarray(target, jnp.int32).reshape(-1, MAX_CALLS, CALL_WIDTH)
    # a well-formed parse leaves -1 past its calls and arguments, as gold_row does
    return ok & (n_calls == target_len) & jnp.all(calls == gold, axis=(1, 2))


@register("reward", "function_call")
def function_call_reward(completion, completion_mask, target, target_len):
    """1 iff the calls are exactly the gold calls (module doc). aux: `format_ok`."""
    ok, calls, n_calls = _parse(completion, completion_mask)
    exact = _exact(ok, calls, n_calls, target, jnp.asarray(target_len, jnp.int32))
    return exact.astype(jnp.float32), {"format_ok": ok.astype(jnp.float32)}


def _arg_scores(p, g):
    """Per (gold call, predicted call): key-set IoU and exact values, [N, C, C] each."""
    pk, pv = p[:, None, :, 2::2], p[:, None, :, 3::2]                 # [N, 1, C, K]
    gk, gv = g[:, :, None, 2::2], g[:, :, None, 3::2]                 # [N, C, 1, K]
    p_has, g_has = pk >= 0, gk >= 0
    same_key = (gk[..., :, None] == pk[..., None, :]) & g_has[..., :, None] & p_has[..., None, :]
    inter = jnp.sum(jnp.any(same_key, -1), -1)
    union = jnp.sum(g_has, -1) + jnp.sum(p_has, -1) - inter
    iou = jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0)
    same_value = same_key & (gv[..., :, None] == pv[..., None, :])
    values = jnp.sum(jnp.any(same_value, -1), -1)
    return iou, values


@register("reward", "toolrl_fine_grained")
def toolrl_fine_grained_reward(completion, completion_mask, target, target_len):
    """ToolRL's format + fine-grained correctness reward (module doc), in [-3, 4]."""
    ok, calls, n_calls = _parse(completion, completion_mask)
    target_len = jnp.asarray(target_len, jnp.int32)
    gold = jnp.asarray(target, jnp.int32).reshape(-1, MAX_CALLS, CALL_WIDTH)
    slots = jnp.arange(MAX_CALLS)[None]
    g_on, p_on = slots < target_len[:, None], slots < n_calls[:, None]
    same_name = ((gold[..., 0][:, :, None] == calls[..., 0][:, None, :])
                 & g_on[:, :, None] & p_on[:, None, :])                    # [N, Cg, Cp]
    inter = jnp.sum(jnp.any(same_name, -1), -1)       # gold names are distinct (the task's)
    name_iou = inter / jnp.maximum(target_len + n_calls - inter, 1)
    iou, values = _arg_scores(calls, gold)
    matched = jnp.sum(jnp.max(jnp.where(same_name, iou + values, 0.0), -1), -1)
    r_max = 1.0 + target_len + jnp.sum(jnp.where(g_on, gold[..., 1], 0), -1)
    match_frac = jnp.where(ok, (name_iou + matched) / r_max, 0.0)
    r = ok.astype(jnp.float32) + 6.0 * match_frac - 3.0
    exact = _exact(ok, calls, n_calls, target, target_len)
    return r.astype(jnp.float32), {"format_ok": ok.astype(jnp.float32), "name_iou": name_iou,
                                   "match_frac": match_frac,
                                   "exact": exact.astype(jnp.float32)}


# ----------------------------------------------------------------------------------------------
# plain-Python references (the tests check the JAX rewards against these)
# ----------------------------------------------------------------------------------------------
_CALL = re.compile(r"([a-z]{1,%d})\(([^()]*)\)" % MAX_CHARS)
_ARG = re.compile(r"([a-z]{1,%d})=([a-z0-9]{1,%d})" % (MAX_CHARS, MAX_CHARS))


def parse_calls(text: str, terminated: bool) -> Optional[List[Tuple[str, List[Tuple[str, str]]]]]:
    """The calls of a completion's text, or None when it is not well-formed (module doc)."""
    if not terminated or not text:
        return None
    calls = []
    for part in text.split("|"):
        m = _CALL.fullmatch(part)
        if not m:
            return None
        args = [_ARG.fullmatch(a) for a in m.group(2).split(",")]
        if not all(args) or len(args) > MAX_ARGS or len({a.group(1) for a in args}) < len(args):
            return None
        calls.append((m.group(1), [(a.group(1), a.group(2)) for a in args]))
    return calls if len(calls) <= MAX_CALLS else None


def fine_grained_reference(text: str, terminated: bool, gold) -> float:
    """`toolrl_fine_grained` of one decoded completion against gold calls (module doc)."""
    pred = parse_calls(text, terminated)
    if pred is None:
        return -3.0
    g_names, p_names = [n for n, _ in gold], [n for n, _ in pred]
    inter = sum(min(g_names.count(n), p_names.count(n)) for n in set(g_names))
    name_iou = inter / (len(g_names) + len(p_names) - inter)

    def score(g, p):
        gk, pk = dict(g[1]), dict(p[1])
        keys = len(set(gk) & set(pk)) / len(set(gk) | set(pk))
        return keys + sum(1 for k, v in gk.items() if pk.get(k) == v)

    best = sum(max([score(g, p) for p in pred if p[0] == g[0]], default=0.0) for g in gold)
    r_max = 1 + len(gold) + sum(len(a) for _, a in gold)
    return 1.0 + 6.0 * (name_iou + best) / r_max - 3.0


def exact_reference(text: str, terminated: bool, gold) -> float:
    pred = parse_calls(text, terminated)
    return float(pred is not None and pred == [(n, list(a)) for n, a in gold])

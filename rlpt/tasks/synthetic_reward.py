"""On-device rewards for the synthetic tasks (`rlpt.tasks.synthetic`), plus host references.

Every reward has the signature

    reward(completion [N,T] int32, completion_mask [N,T], target [N,A] int32, target_len [N] int32)
        -> (rewards [N] float32, aux: dict of [N] arrays)

It is pure JAX (jittable, vmappable over an extra leading axis, no host callbacks) and works on
`CharTokenizer` ids. Reading a completion: only the leading run of `completion_mask != 0`
counts (a hole in the mask ends the completion). The completion's *text* is everything before
the first eos inside that run; the completion is *terminated* if such an eos exists. Tokens
after the first eos are ignored. An unterminated completion (no eos before the mask ends)
always scores 0, so the policy must learn to stop.

* `exact_answer` (also registered as `addition` and `multiplication`): `target` holds the
  answer's digit tokens right-padded, `target_len` their count. Reward 1.0 iff the text is
  exactly those digits (no leading zeros, spaces or extra tokens) and is terminated.
  aux: `format_ok` = terminated and the text is one or more digits.
* `numeric_answer`: as `exact_answer`, but leading zeros are allowed (`046` scores for 46);
  aux: `format_ok`, `leading_zero`.
* `countdown`: `target[:, 0]` is the goal value, `target[:, 1:1 + target_len]` the given
  numbers (the rest is ignored). The text must be `num (op num)*` with op in `+ - * /`, no
  spaces or parentheses, each literal without leading zeros and at most 9 digits. It is
  evaluated with `*` and `/` binding tighter than `+` and `-`, left to right, in integer
  arithmetic; a division must be exact (non-zero divisor, zero remainder) or the expression
  is invalid. Each literal must match a given number, each given number used at most once (a
  multiset check, so `3,3,5` allows `3*3`). Reward 1.0 iff all of that holds and the value
  equals the goal. aux: `format_ok` (terminated and grammatical), `numbers_ok` (literals are a
  sub-multiset of the given numbers), `value` (int32, meaningful only when both are true).
  Arithmetic is int32: exact whenever prod(n_i + 1) < 2**31 over the given numbers (the task
  generator asserts this); larger intermediate values from invalid literals may wrap but
  such completions already score 0.

The host references (`completion_text`, `exact_answer_reference`, `countdown_reference`) define
the same semantics in plain Python (no `eval`) and are what the tests check the JAX code against.
"""
from typing import Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rlpt.registry import register
from rlpt.tokenizers import CharTokenizer

_TOK = CharTokenizer()
PAD_ID, BOS_ID, EOS_ID = _TOK.pad_id, _TOK.bos_id, _TOK.eos_id
DIGIT0_ID = _TOK.stoi["0"]
assert _TOK.ids_of("0123456789") == list(range(DIGIT0_ID, DIGIT0_ID + 10))
PLUS_ID, MINUS_ID, TIMES_ID, DIV_ID = _TOK.ids_of("+-*/")
MAX_LITERAL_DIGITS = 9  # keeps every literal < 10**9 < 2**31

Aux = Dict[str, jax.Array]


def valid_prefix(completion_mask: jax.Array) -> jax.Array:
    """[N,T] bool: the leading run of non-zero mask entries."""
    return jnp.cumprod((completion_mask != 0).astype(jnp.int32), axis=-1).astype(bool)


def is_digit(tokens: jax.Array) -> jax.Array:
    return (tokens >= DIGIT0_ID) & (tokens < DIGIT0_ID + 10)


# ----------------------------------------------------------------------------------------------
# addition / multiplication: exact answer digits then eos
# ----------------------------------------------------------------------------------------------
@register("reward", "exact_answer")
@register("reward", "addition")
@register("reward", "multiplication")
def exact_answer_reward(completion, completion_mask, target, target_len) -> Tuple[jax.Array, Aux]:
    """1.0 iff the completion is exactly `target[:target_len]` followed by eos (see module doc)."""
    completion = jnp.asarray(completion, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    target_len = jnp.asarray(target_len, jnp.int32)
    t, a = completion.shape[-1], target.shape[-1]
    width = max(t, a + 1)  # static; padding columns are masked out, so they are never read
    comp = jnp.pad(completion, ((0, 0), (0, width - t)), constant_values=PAD_ID)
    valid = jnp.pad(valid_prefix(completion_mask), ((0, 0), (0, width - t)))

    is_eos = (comp == EOS_ID) & valid
    terminated = is_eos.any(-1)
    eos_pos = jnp.where(terminated, jnp.argmax(is_eos, axis=-1), width)  # text length
    pos = jnp.arange(width)[None, :]
    before_eos = pos < eos_pos[:, None]
    format_ok = terminated & (eos_pos >= 1) & jnp.all(is_digit(comp) | ~before_eos, axis=-1)

    tgt = jnp.pad(target, ((0, 0), (0, width - a)), constant_values=PAD_ID)
    in_answer = pos < target_len[:, None]
    digits_match = jnp.all((comp == tgt) | ~in_answer, axis=-1)
    correct = terminated & (eos_pos == target_len) & digits_match
    return correct.astype(jnp.float32), {"format_ok": format_ok}


@register("reward", "numeric_answer")
def numeric_answer_reward(completion, completion_mask, target, target_len
                          ) -> Tuple[jax.Array, Aux]:
    """1.0 iff the completion is digits then eos and their value is the target's: `exact_answer`
    that also accepts leading zeros (`046` for 46), the equivalence a strict rule misses.
    aux: `format_ok` (as exact_answer) and `leading_zero` (format_ok, two or more digits, the
    first a zero)."""
    completion = jnp.asarray(completion, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    target_len = jnp.asarray(target_len, jnp.int32)
    t, a = completion.shape[-1], target.shape[-1]
    width = max(t, a + 1)
    comp = jnp.pad(completion, ((0, 0), (0, width - t)), constant_values=PAD_ID)
    valid = jnp.pad(valid_prefix(completion_mask), ((0, 0), (0, width - t)))
    is_eos = (comp == EOS_ID) & valid
    terminated = is_eos.any(-1)
    eos_pos = jnp.where(terminated, jnp.argmax(is_eos, axis=-1), width)
    pos = jnp.arange(width)[None, :]
    before_eos = pos < eos_pos[:, None]
    format_ok = terminated & (eos_pos >= 1) & jnp.all(is_digit(comp) | ~before_eos, axis=-1)
    lead = (eos_pos - target_len)[:, None]             # leading zeros the text may carry
    tgt = jnp.take_along_axis(target, jnp.clip(pos - lead, 0, a - 1), axis=-1)
    ok = jnp.where(pos < lead, comp == DIGIT0_ID, comp == tgt) | ~before_eos
    correct = format_ok & (lead[:, 0] >= 0) & jnp.all(ok, axis=-1)
    leading_zero = format_ok & (eos_pos >= 2) & (comp[:, 0] == DIGIT0_ID)
    return correct.astype(jnp.float32), {"format_ok": format_ok, "leading_zero": leading_zero}


# ----------------------------------------------------------------------------------------------
# countdown: evaluate `num (op num)*` with precedence, multiset number check, exact division
# ----------------------------------------------------------------------------------------------
_OP_START, _OP_MUL, _OP_DIV = 0, 1, 2


def _countdown_step(numbers, carry, xs):
    """One token of the left-to-right evaluator. All carry fields are [N] (used: [N,K])."""
    tok, valid = xs
    c = dict(carry)
    active = valid & ~c["done"]
    digit = is_digit(tok)
    is_eos = tok == EOS_ID
    is_addsub = (tok == PLUS_ID) | (tok == MINUS_ID)
    is_muldiv = (tok == TIMES_ID) | (tok == DIV_ID)
    closes = active & (is_eos | is_addsub | is_muldiv)  # a literal must end here

    # Digits accumulate into the literal (value frozen past MAX_LITERAL_DIGITS: invalid anyway).
    d = tok - DIGIT0_ID
    add_digit = active & digit
    grow = add_digit & (c["lit_len"] < MAX_LITERAL_DIGITS)
    lit = jnp.where(grow, c["lit"] * 10 + d, c["lit"])
    lead0 = jnp.where(add_digit & (c["lit_len"] == 0), d == 0, c["lead0"])
    lit_len = c["lit_len"] + add_digit.astype(jnp.int32)

    # Closing a literal: grammar, multiset match against unused given numbers, fold into term.
    lit_ok = (lit_len >= 1) & (lit_len <= MAX_LITERAL_DIGITS) & ~(lead0 & (lit_len > 1))
    cand = (numbers == lit[:, None]) & ~c["used"]
    matched = cand.any(-1)
    first = jnp.arange(numbers.shape[-1])[None, :] == jnp.argmax(cand, axis=-1)[:, None]
    used = c["used"] | (first & (closes & matched)[:, None])
    safe_lit = jnp.where(lit == 0, 1, lit)
    div_ok = (lit != 0) & (c["term"] % safe_lit == 0)
    term = jnp.select([c["term_op"] == _OP_MUL, c["term_op"] == _OP_DIV],
                      [c["term"] * lit, c["term"] // safe_lit], lit)
    arith_ok = (c["term_op"] != _OP_DIV) | div_ok

    ends_term = closes & (is_addsub | is_eos)
    total = jnp.where(ends_term, c["total"] + c["sign"] * term, c["total"])
    new_sign = jnp.where(tok == MINUS_ID, -1, 1)
    new_op = jnp.where(tok == TIMES_ID, _OP_MUL, _OP_DIV)

    out = {
        "done": c["done"] | ~valid | (active & is_eos),
        "terminated": c["terminated"] | (active & is_eos),
        "syntax_ok": c["syntax_ok"] & ~(closes & ~lit_ok) & ~(active & ~(digit | closes)),
        "arith_ok": c["arith_ok"] & ~(closes & ~arith_ok),
        "numbers_ok": c["numbers_ok"] & ~(closes & ~matched),
        "used": used,
        "lit": jnp.where(closes, 0, lit),
        "lit_len": jnp.where(closes, 0, lit_len),
        "lead0": jnp.where(closes, False, lead0),
        "term": jnp.where(closes, jnp.where(ends_term, 0, term), c["term"]),
        "term_op": jnp.where(closes, jnp.where(ends_term, _OP_START, new_op), c["term_op"]),
        "sign": jnp.where(closes & is_addsub, new_sign, c["sign"]),
        "total": total,
    }
    return out, None


@register("reward", "countdown")
def countdown_reward(completion, completion_mask, target, target_len) -> Tuple[jax.Array, Aux]:
    """1.0 iff the completion is a valid expression over the given numbers equal to the goal."""
    completion = jnp.asarray(completion, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    target_len = jnp.asarray(target_len, jnp.int32)
    n = completion.shape[0]
    k = target.shape[-1] - 1
    goal = target[:, 0]
    numbers = jnp.where(jnp.arange(k)[None, :] < target_len[:, None], target[:, 1:], -1)
    zeros = jnp.zeros((n,), jnp.int32)
    false, true = jnp.zeros((n,), bool), jnp.ones((n,), bool)
    init = {
        "done": false, "terminated": false, "syntax_ok": true, "arith_ok": true,
        "numbers_ok": true, "used": jnp.zeros((n, k), bool), "lit": zeros, "lit_len": zeros,
        "lead0": false, "term": zeros, "term_op": zeros, "sign": zeros + 1, "total": zeros,
    }
    xs = (completion.T, valid_prefix(completion_mask).T)
    final, _ = lax.scan(lambda c, x: _countdown_step(numbers, c, x), init, xs)
    format_ok = final["terminated"] & final["syntax_ok"]
    numbers_ok = final["numbers_ok"]
    correct = format_ok & numbers_ok & final["arith_ok"] & (final["total"] == goal)
    aux = {"format_ok": format_ok, "numbers_ok": numbers_ok, "value": final["total"]}
    return correct.astype(jnp.float32), aux


# ----------------------------------------------------------------------------------------------
# Host references (plain Python; the tests cross-check the JAX rewards against these)
# ----------------------------------------------------------------------------------------------
def completion_text(tokens: Sequence[int],
                    mask: Optional[Sequence[int]] = None) -> Tuple[str, bool]:
    """Host decoding with the reward's reading rules -> (text before first eos, terminated).

    Special tokens inside the text are rendered as `<pad>`, `<bos>`, `<unk>`, which no task
    accepts (both references reject `<`), so the text alone decides the reference reward.
    """
    tokens = [int(t) for t in np.asarray(tokens).tolist()]
    mask = [1] * len(tokens) if mask is None else [int(m) for m in np.asarray(mask).tolist()]
    out = []
    for tok, m in zip(tokens, mask):
        if not m:
            return "".join(out), False
        if tok == EOS_ID:
            return "".join(out), True
        out.append(_TOK.itos[tok] if 0 <= tok < len(_TOK.itos) else "<unk>")
    return "".join(out), False


def exact_answer_reference(text: str, terminated: bool, answer: str) -> Tuple[float, bool]:
    """-> (reward, format_ok) for addition/multiplication (see module doc)."""
    format_ok = terminated and len(text) >= 1 and all(ch in "0123456789" for ch in text)
    return float(terminated and text == answer), format_ok


def numeric_answer_reference(text: str, terminated: bool, answer: str) -> Tuple[float, bool]:
    """-> (reward, format_ok) of `numeric_answer`: digits whose leading zeros stripped are the
    answer's."""
    format_ok = terminated and len(text) >= 1 and all(ch in "0123456789" for ch in text)
    return float(format_ok and (text.lstrip("0") or "0") == (answer.lstrip("0") or "0")
                 and len(text) >= len(answer)), format_ok


def parse_countdown(text: str) -> Optional[Tuple[list, list]]:
    """`num (op num)*` -> (literals, ops), or None if malformed (see module doc for the rules)."""
    literals, ops, cur = [], [], ""
    for ch in text + "$":  # "$" is a sentinel that closes the last literal
        if ch in "0123456789":
            cur += ch
            continue
        if ch not in "+-*/$":
            return None
        if not cur or len(cur) > MAX_LITERAL_DIGITS or (cur[0] == "0" and len(cur) > 1):
            return None
        literals.append(int(cur))
        cur = ""
        if ch != "$":
            ops.append(ch)
    return literals, ops


def evaluate_countdown(literals: Sequence[int], ops: Sequence[str]) -> Optional[int]:
    """Integer value with * / before + -, left to right; None on an inexact or zero division."""
    total, sign, term = 0, 1, literals[0]
    for op, x in zip(ops, literals[1:]):
        if op == "*":
            term *= x
        elif op == "/":
            if x == 0 or term % x:
                return None
            term //= x
        else:
            total += sign * term
            sign, term = (1 if op == "+" else -1), x
    return total + sign * term


def countdown_reference(text: str, terminated: bool, numbers: Sequence[int],
                        goal: int) -> Tuple[float, bool, bool]:
    """-> (reward, format_ok, numbers_ok) for countdown (see module doc)."""
    parsed = parse_countdown(text)
    if parsed is None:
        return 0.0, False, False
    literals, ops = parsed
    pool = list(numbers)
    numbers_ok = True
    for x in literals:
        if x in pool:
            pool.remove(x)
        else:
            numbers_ok = False
    value = evaluate_countdown(literals, ops)
    ok = terminated and numbers_ok and value is not None and value == goal
    return float(ok), terminated, numbers_ok

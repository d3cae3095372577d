"""An integer calculator tool that runs on device: parse, evaluate and render in JAX.

The model calls the tool with CharTokenizer characters (arXiv 2505.01441, ARTIST, runs tools
inside the rollout; here the tool itself is a few array ops, so it stays inside the one jitted
RL program and never goes to the host):

    call     `[` expr `]`        e.g. `[123*45]`
    result   `<` value `>`       e.g. `<5535>`, `<-12>`  (injected by the environment)
    error    `<?>`               one fixed sequence for every malformed call

`expr` is `num (op num)*` with op in `+ - *` and num one or more digits (leading zeros are
allowed: `007` is 7). `*` binds tighter than `+` and `-`; evaluation is left to right in int32.
A call is an error (`<?>`) when

* too long:  the body between `[` and `]` has more than `max_len` tokens (the buffer width);
* syntax:    it is empty, starts or ends with an operator, has two operators in a row, or holds
             any other token (letters, spaces, `(`, `/`, a nested `[`, ...);
* overflow:  a literal has more than 9 digits, or a product term or a running sum leaves
             [-LIMIT, LIMIT] with LIMIT = 999_999_999 (so every value fits int32 and any
             result renders in at most 9 digits). Partial sums are checked left to right.

The codes are checked in that order (too long, then syntax, then overflow). Overflow is detected
before it can happen: a product is formed only when `|term| <= LIMIT // |literal|`, and a sum of
two values within LIMIT cannot wrap int32 (2 * LIMIT < 2**31).

`evaluate_calls` works on a fixed-width token buffer `[N, L]` with per-row lengths (a
`lax.scan` over the L columns, one small state machine per row); `render_results` turns values
into fixed-width result token rows `[N, RESULT_WIDTH]` plus lengths. `reference_eval` and
`reference_render` define the same semantics in plain Python (no `eval`) for the tests.
"""
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from rlpt.tokenizers import CharTokenizer

_TOK = CharTokenizer()
CALL_OPEN, CALL_CLOSE = _TOK.stoi["["], _TOK.stoi["]"]
RESULT_OPEN, RESULT_CLOSE = _TOK.stoi["<"], _TOK.stoi[">"]
ERROR_MARK = _TOK.stoi["?"]
DIGIT0 = _TOK.stoi["0"]
PLUS, MINUS, TIMES = _TOK.ids_of("+-*")
assert _TOK.ids_of("0123456789") == list(range(DIGIT0, DIGIT0 + 10))

MAX_DIGITS = 9
LIMIT = 10 ** MAX_DIGITS - 1
RESULT_WIDTH = 1 + 1 + MAX_DIGITS + 1     # `<` `-` 9 digits `>`
ERROR_TOKENS = (RESULT_OPEN, ERROR_MARK, RESULT_CLOSE)
OK, TOO_LONG, SYNTAX, OVERFLOW = 0, 1, 2, 3
DEFAULT_MAX_LEN = 24


def _fold_mul(term, lit, mul):
    """term * lit when `mul`, else lit; plus an overflow flag (checked before multiplying)."""
    safe = jnp.maximum(lit, 1)
    over = mul & (lit > 0) & (jnp.abs(term) > LIMIT // safe)
    return jnp.where(mul, jnp.where(over, 0, term * lit), lit), over


def _step(carry, xs):
    """One column of the evaluator; every carry field is [N]."""
    tok, active = xs
    c = dict(carry)
    is_digit = (tok >= DIGIT0) & (tok < DIGIT0 + 10)
    is_add = (tok == PLUS) | (tok == MINUS)
    is_op = is_add | (tok == TIMES)
    dig = active & is_digit
    grow = dig & (c["lit_len"] < MAX_DIGITS)
    lit = jnp.where(grow, c["lit"] * 10 + (tok - DIGIT0), c["lit"])
    lit_len = c["lit_len"] + dig.astype(jnp.int32)
    closes = active & is_op
    term, over_mul = _fold_mul(c["term"], lit, c["mul"])
    ends_term = closes & is_add
    total = c["total"] + c["sign"] * term       # |total|, |term| <= LIMIT: no int32 wrap
    over_sum = ends_term & (jnp.abs(total) > LIMIT)
    out = {
        "syntax": c["syntax"] | (active & ~is_digit & ~is_op) | (closes & (lit_len == 0)),
        "over": c["over"] | (dig & (lit_len > MAX_DIGITS)) | (closes & over_mul) | over_sum,
        "lit": jnp.where(closes, 0, lit),
        "lit_len": jnp.where(closes, 0, lit_len),
        "term": jnp.where(closes & ~ends_term, term, c["term"]),
        "mul": jnp.where(closes, tok == TIMES, c["mul"]),
        "sign": jnp.where(ends_term, jnp.where(tok == MINUS, -1, 1), c["sign"]),
        "total": jnp.where(ends_term, jnp.where(over_sum, 0, total), c["total"]),
    }
    return out, None


def evaluate_calls(buf_NL: jax.Array, length_N: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Evaluates call bodies: buf [N, L] int32 tokens, length [N] (may exceed L: too long).

    Returns (value [N] int32, code [N] int32 in {OK, TOO_LONG, SYNTAX, OVERFLOW}); value is 0
    unless code == OK. Pure JAX, static shapes, never raises.
    """
    buf_NL = jnp.asarray(buf_NL, jnp.int32)
    length_N = jnp.asarray(length_N, jnp.int32)
    n, L = buf_NL.shape
    z = jnp.zeros((n,), jnp.int32)
    f = jnp.zeros((n,), bool)
    init = {"syntax": f, "over": f, "lit": z, "lit_len": z, "term": z, "mul": f, "sign": z + 1,
            "total": z}
    active = jnp.arange(L)[None, :] < jnp.minimum(length_N, L)[:, None]
    c, _ = lax.scan(_step, init, (buf_NL.T, active.T))
    # the end of the body closes the last literal like a `+` would
    term, over_mul = _fold_mul(c["term"], c["lit"], c["mul"])
    total = c["total"] + c["sign"] * term
    syntax = c["syntax"] | (c["lit_len"] == 0)
    over = c["over"] | over_mul | (jnp.abs(total) > LIMIT)
    code = jnp.select([length_N > L, syntax, over], [TOO_LONG, SYNTAX, OVERFLOW], OK)
    return jnp.where(code == OK, total, 0).astype(jnp.int32), code.astype(jnp.int32)


def render_results(value_N: jax.Array, code_N: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Result tokens [N, RESULT_WIDTH] (pad 0 after the end) and their lengths [N].

    `<` [`-`] digits `>` for code OK, else the fixed error sequence `<?>`.
    """
    value_N = jnp.asarray(value_N, jnp.int32)
    ok = jnp.asarray(code_N) == OK
    mag = jnp.abs(value_N)
    pow10 = jnp.array([10 ** k for k in range(MAX_DIGITS)], jnp.int32)          # [9]
    n_dig = jnp.maximum(1, jnp.sum(mag[:, None] >= pow10[None, 1:], axis=1) + 1)  # 0 -> 1 digit
    neg = (value_N < 0).astype(jnp.int32)
    col = jnp.arange(RESULT_WIDTH)[None, :]
    k = col - 1 - neg[:, None]                        # index of the digit at this column
    exp = jnp.clip(n_dig[:, None] - 1 - k, 0, MAX_DIGITS - 1)
    digit = DIGIT0 + (mag[:, None] // pow10[exp]) % 10
    close_at = (1 + neg + n_dig)[:, None]
    toks = jnp.select(
        [col == 0, (col == 1) & (neg[:, None] == 1), (k >= 0) & (col < close_at), col == close_at],
        [RESULT_OPEN, MINUS, digit, RESULT_CLOSE], 0)
    err = jnp.zeros((RESULT_WIDTH,), jnp.int32).at[:3].set(jnp.array(ERROR_TOKENS))
    toks = jnp.where(ok[:, None], toks, err[None, :]).astype(jnp.int32)
    return toks, jnp.where(ok, 2 + neg + n_dig, 3).astype(jnp.int32)


def calculator(buf_NL, length_N):
    """The tool: call bodies -> (result tokens [N, RESULT_WIDTH], result length [N], code [N])."""
    value, code = evaluate_calls(buf_NL, length_N)
    toks, n = render_results(value, code)
    return toks, n, code


# ----------------------------------------------------------------------------------------------
# Pure-Python reference (the tests check the JAX code against it)
# ----------------------------------------------------------------------------------------------
def reference_eval(body: str, max_len: int = DEFAULT_MAX_LEN) -> Tuple[Optional[int], int]:
    """The call body as text -> (value or None, code), same rules as `evaluate_calls`."""
    if len(body) > max_len:
        return None, TOO_LONG
    lits, ops, cur = [], [], ""
    for ch in body + "+":                      # a trailing sentinel closes the last literal
        if ch.isdigit() and ch in "0123456789":
            cur += ch
        elif ch in "+-*":
            if not cur:
                return None, SYNTAX
            lits.append(cur)
            ops.append(ch)
            cur = ""
        else:
            return None, SYNTAX
    ops = ops[:-1]
    if any(len(x) > MAX_DIGITS for x in lits):
        return None, OVERFLOW
    total, sign, term = 0, 1, int(lits[0])
    for op, x in zip(ops, map(int, lits[1:])):
        if op == "*":
            term *= x
            if abs(term) > LIMIT:
                return None, OVERFLOW
        else:
            total += sign * term
            if abs(total) > LIMIT:
                return None, OVERFLOW
            sign, term = (1 if op == "+" else -1), x
    total += sign * term
    if abs(total) > LIMIT:
        return None, OVERFLOW
    return total, OK


def reference_render(value: Optional[int]) -> str:
    """`<value>` for a value, `<?>` for an error (None)."""
    return "<?>" if value is None else f"<{value}>"

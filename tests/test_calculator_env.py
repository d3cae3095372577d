"""The on-device calculator against a pure-Python reference (no `eval`) and independent values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlpt.envs.calculator import (DEFAULT_MAX_LEN, LIMIT, OK, OVERFLOW, RESULT_WIDTH, SYNTAX,
                                  TOO_LONG, calculator, reference_eval, reference_render)
from rlpt.tokenizers import CharTokenizer

TOK = CharTokenizer()
L = DEFAULT_MAX_LEN
_calc = jax.jit(calculator)


def _run(bodies):
    """JAX calculator on text bodies -> list of (rendered text, code)."""
    buf = np.zeros((len(bodies), L), np.int32)
    for i, b in enumerate(bodies):
        ids = TOK.encode(b)[:L]
        buf[i, :len(ids)] = ids
    toks, n, code = jax.device_get(_calc(jnp.asarray(buf), jnp.asarray([len(b) for b in bodies])))
    out = []
    for i in range(len(bodies)):
        assert np.all(toks[i, n[i]:] == 0), "padding after the result"
        out.append((TOK.decode(toks[i, :n[i]]), int(code[i])))
    return out


def _check_against_reference(bodies):
    got = _run(bodies)
    for body, (text, code) in zip(bodies, got):
        value, ref_code = reference_eval(body, L)
        assert (text, code) == (reference_render(value), ref_code), body
    return got


def _random_expression(rng):
    """A well-formed body and its value computed independently (sum of products)."""
    k = int(rng.integers(1, 6))
    nums = [int(rng.integers(0, 10 ** int(rng.integers(1, 4)))) for _ in range(k)]
    ops = [str(rng.choice(list("+-*"))) for _ in range(k - 1)]
    lits = [str(x).zfill(int(rng.integers(len(str(x)), len(str(x)) + 2))) for x in nums]
    body = lits[0] + "".join(o + x for o, x in zip(ops, lits[1:]))
    terms, signs = [[nums[0]]], [1]
    for op, x in zip(ops, nums[1:]):
        if op == "*":
            terms[-1].append(x)
        else:
            terms.append([x])
            signs.append(1 if op == "+" else -1)
    return body, sum(s * int(np.prod(t, dtype=object)) for s, t in zip(signs, terms))


def test_random_valid_expressions_match_independent_values():
    rng = np.random.default_rng(0)
    cases = [_random_expression(rng) for _ in range(500)]
    got = _check_against_reference([b for b, _ in cases])
    n_ok = 0
    for (body, value), (text, code) in zip(cases, got):
        if len(body) <= L and abs(value) <= LIMIT and code == OK:
            assert text == f"<{value}>", body
            n_ok += 1
    assert n_ok > 400  # most random expressions are in range; the rest are checked above
    assert any(v < 0 for _, v in cases) and any("*" in b and "+" in b for b, _ in cases)


def test_random_malformed_strings_match_reference():
    rng = np.random.default_rng(1)
    alphabet = list("0123456789+-*") * 3 + list("/()a =[<>?")
    bodies = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 31)))) for _ in range(800)]
    got = _check_against_reference(bodies)
    codes = [c for _, c in got]
    for c in (OK, TOO_LONG, SYNTAX):
        assert codes.count(c) >= 20, (c, codes.count(c))


@pytest.mark.parametrize("body,expected", [
    ("123*45", "<5535>"), ("2-5*3", "<-13>"), ("1+2*3-4", "<3>"), ("007", "<7>"), ("0", "<0>"),
    ("10*10*10-1", "<999>"), ("2*3*4+1*5", "<29>"), ("0*999999999", "<0>"),
    ("999999999", "<999999999>"), ("0-999999999", "<-999999999>"),
    ("31622*31622", "<999950884>"),
    ("5-999999999", "<-999999994>"), ("999999999-999999999+7", "<7>"),
    # syntax
    ("", "<?>"), ("+1", "<?>"), ("1+", "<?>"), ("1**2", "<?>"), ("1+-2", "<?>"), ("-1", "<?>"),
    ("1 + 2", "<?>"), ("(1+2)", "<?>"), ("1/2", "<?>"), ("a", "<?>"), ("1[2", "<?>"),
    # overflow (never wraps: 65536*65536 is 0 in int32, 46341*46341 is negative)
    ("1000000000", "<?>"), ("999999999*2", "<?>"), ("999999999+1", "<?>"),
    ("65536*65536", "<?>"), ("46341*46341", "<?>"), ("99999*99999*0", "<?>"),
    ("999999999+1-5", "<?>"),   # partial sums are checked left to right
    ("0000000000", "<?>"),      # 10-digit literal
    # too long
    ("1+" * 12 + "1", "<?>"), ("1" * 25, "<?>"),
])
def test_table(body, expected):
    (text, code), = _check_against_reference([body])
    assert text == expected


def test_codes_in_order_and_length_limit():
    body24 = "1+" * 11 + "12"            # 24 tokens: fits
    assert _run([body24])[0] == ("<23>", OK)
    assert _run([body24 + "3"])[0][1] == TOO_LONG
    assert _run(["a" * 25])[0][1] == TOO_LONG     # too long is reported before syntax
    assert _run(["9999999999+a"])[0][1] == SYNTAX  # syntax before overflow
    assert _run(["9999999999"])[0][1] == OVERFLOW
    assert reference_eval("1" * 30, max_len=40) == (None, OVERFLOW)


def test_render_values_on_device():
    from rlpt.envs.calculator import render_results
    rng = np.random.default_rng(2)
    values = [0, 1, -1, 9, 10, -10, LIMIT, -LIMIT, 10 ** 8, -(10 ** 8)] + \
        [int(x) for x in rng.integers(-LIMIT, LIMIT + 1, size=200)] + \
        [int(x) for x in rng.integers(-999, 1000, size=50)]
    codes = [OK] * len(values)
    values, codes = values + [5, 0], codes + [SYNTAX, OVERFLOW]
    toks, n = jax.device_get(jax.jit(render_results)(jnp.asarray(values, jnp.int32),
                                                     jnp.asarray(codes)))
    assert toks.shape == (len(values), RESULT_WIDTH)
    for v, c, row, k in zip(values, codes, toks, n):
        assert TOK.decode(row[:k]) == (f"<{v}>" if c == OK else "<?>")
        assert np.all(row[k:] == 0)


def test_random_token_ids_never_crash():
    """Any int32 ids (incl. out-of-vocabulary ones) give a result or the error sequence."""
    rng = np.random.default_rng(3)
    buf = rng.integers(-5, 70, size=(64, L)).astype(np.int32)
    length = rng.integers(0, 40, size=64).astype(np.int32)
    toks, n, code = jax.device_get(_calc(jnp.asarray(buf), jnp.asarray(length)))
    assert set(code.tolist()) <= {OK, TOO_LONG, SYNTAX, OVERFLOW}
    assert np.all((n >= 3) & (n <= RESULT_WIDTH))

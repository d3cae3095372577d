"""Answer extraction and equivalence: every real GSM8K solution, and a table of tricky cases."""
import random

import pytest
from conftest import within

from rlpt.rewards import math_answer
from rlpt.rewards.math_answer import (
    extract_answer,
    extract_boxed,
    extract_hash,
    gsm8k_reward,
    is_equivalent,
    parse_number,
)
from rlpt.tasks.gsm8k_data import read_split


@pytest.fixture(scope="module")
def rows():
    return read_split("train") + read_split("test")


def _int(answer):  # independent reference for GSM8K's integer gold answers
    return int(answer.replace(",", ""))


def test_every_gold_solution_verifies_against_its_own_answer(rows):
    assert len(rows) == 8792
    failures = [i for i, r in enumerate(rows) if gsm8k_reward(r["solution"], r["answer"]) != 1.0]
    assert failures == []


def test_no_gold_solution_verifies_against_a_different_answer(rows):
    rng = random.Random(1234)
    checked, accepted = 0, []
    for i, r in enumerate(rows):
        other = rows[rng.randrange(len(rows))]["answer"]
        if _int(other) == _int(r["answer"]):
            continue
        checked += 1
        if gsm8k_reward(r["solution"], other) != 0.0:
            accepted.append((i, other))
    assert checked > 8500 and accepted == []


def test_fallback_extractors_on_solutions_without_the_hash_line(rows):
    # With the `####` line cut off, "answer is" / last-number extraction still finds the gold
    # answer in most worked solutions (measured: 8,542 of 8,792).
    ok = sum(gsm8k_reward(r["solution"].rsplit("####", 1)[0], r["answer"]) for r in rows)
    assert ok / len(rows) > 0.95


TRICKY = [  # (prediction, gold, equal?)
    ("1,000", "1000", True),
    ("1000", "1,000", True),
    ("$1,200", "1200", True),
    ("\\$18", "18", True),
    ("-$5", "-5", True),
    ("$-5", "-5", True),
    ("\u22127", "-7", True),           # Unicode minus
    ("18.00", "18", True),
    ("18.", "18", True),
    ("0.5", "1/2", True),
    ("\\frac{1}{2}", "0.5", True),
    ("\\dfrac{3}{4}", "3/4", True),
    ("$\\frac{3}{4}$", "0.75", True),   # LaTeX math delimiters, not a currency sign
    ("\\frac{-1}{2}", "-0.5", True),
    ("50%", "50", True),               # GSM8K gold answers to "what percent" carry no sign
    ("50%", "0.5", True),              # ... and p% also equals p/100 (the default)
    ("50\\%", "1/2", True),
    ("12 percent", "12", True),
    ("18 dollars", "18", True),
    ("5 km/h", "5", True),
    ("\\text{18 apples}", "18", True),
    ("**42**", "42", True),
    ("x = 5", "5", True),
    ("90^\\circ", "90", True),
    ("1 1/2", "3/2", True),
    (".5", "0.5", True),
    ("1{,}000", "1000", True),
    ("\\text{B}", "b", True),          # non-numeric: normalised strings
    ("1,00", "100", False),            # malformed thousands grouping
    ("1.000", "1000", False),          # a decimal point, not a thousands separator
    ("0.333", "1/3", False),           # exact comparison by default
    ("2\\pi", "2", False),
    ("2x", "2", False),
    ("3, 4", "3", False),
    ("5^2", "5", False),
    ("-5", "5", False),
    ("50", "0.5", False),              # percent equivalence is not transitive
    ("50%", "5", False),
    ("1/0", "0", False),
    ("", "0", False),
    ("17", "18", False),
    ("10-12", "10", False),
    ("18 apples and 2 pears", "18", False),
    ("1 1/2", "1", False),
    ("\\sqrt{2}", "2", False),
    ("12.5", "125", False),
]


@pytest.mark.parametrize("pred, gold, equal", TRICKY)
def test_tricky_equivalence(pred, gold, equal):
    assert is_equivalent(pred, gold, backend="builtin") is equal
    assert is_equivalent(gold, pred, backend="builtin") is equal  # symmetric


def test_tricky_table_is_large_and_balanced():
    assert sum(e for *_, e in TRICKY) >= 25 and sum(not e for *_, e in TRICKY) >= 15


def test_options():
    assert not is_equivalent("50%", "0.5", percent_equals_fraction=False)
    assert is_equivalent("50%", "50", percent_equals_fraction=False)
    assert is_equivalent("0.333", "1/3", rel_tol=1e-2)
    assert not is_equivalent("0.3", "1/3", rel_tol=1e-2)
    assert is_equivalent(None, "1") is False
    with pytest.raises(ValueError, match="unknown backend"):
        is_equivalent("1", "1", backend="sympy")


def test_parse_number_values():
    assert parse_number("$1,234.50") == (pytest.approx(1234.5), False)
    assert parse_number("-3/4") == (-0.75, False)
    assert parse_number("25 %") == (25, True)
    assert parse_number("2 3/4") == (2.75, False)
    assert parse_number("1/0") is None and parse_number("seven") is None


@pytest.mark.parametrize("text, answer", [
    ("She sells 9 eggs.\n#### 72", "72"),
    ("#### 1\nmore text\n####  1,200 \n", "1,200"),            # last #### line
    ("So the answer is 18. Next question: 7", "18"),
    ("Answer: $3.50.", "$3.50"),
    ("We get \\boxed{\\frac{1}{\\sqrt{2}}} here", "\\frac{1}{\\sqrt{2}}"),
    ("first \\boxed{1} then \\boxed{2} end 3", "2"),
    ("\\boxed 7 is it", "7"),
    ("Final: $1,234.50 total", "$1,234.50"),
    ("unbalanced \\boxed{1 and 4", "4"),                      # falls back to the last number
    ("no numbers here", None),
])
def test_extraction(text, answer):
    assert extract_answer(text) == answer


def test_extraction_order_and_errors():
    text = "#### 5\nbut \\boxed{6}"
    assert extract_answer(text) == "5"
    assert extract_answer(text, order=("boxed", "hash")) == "6"
    assert extract_answer("#### ") is None and extract_hash("####\n") is None
    assert extract_boxed("\\boxed{ The}", strip=False) == " The"
    with pytest.raises(KeyError, match="known"):
        extract_answer("1", order=("hash", "nope"))


@pytest.mark.parametrize("response, reward", [
    ("She makes 9 * 2 = $18 every day.\n#### 18", 1.0),
    ("The answer is $18.", 1.0),
    ("so she earns \\boxed{18} dollars", 1.0),
    ("so she earns \\boxed{\\$18.00}", 1.0),
    ("#### 17", 0.0),
    ("I do not know.", 0.0),
])
def test_gsm8k_reward(response, reward):
    assert gsm8k_reward(response, "18") == reward


class _FakeMathVerify:
    """Stands in for the optional math_verify package and records its calls."""

    def __init__(self, result=True):
        self.result, self.calls = result, []

    def parse(self, text):
        return text

    def verify(self, gold, pred):
        self.calls.append((gold, pred))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_math_verify_decides_only_what_the_builtin_cannot(monkeypatch):
    fake = _FakeMathVerify()
    monkeypatch.setattr(math_answer, "_math_verify", lambda: fake)
    assert is_equivalent("\\sqrt{2}", "2^{1/2}")
    assert fake.calls == [("$2^{1/2}$", "$\\sqrt{2}$")]
    assert not is_equivalent("17", "18")                   # plain numbers: built-in verdict
    assert not is_equivalent("\\sqrt{2}", "2^{1/2}", backend="builtin")
    assert len(fake.calls) == 1
    assert is_equivalent("17", "18", backend="math_verify")
    assert len(fake.calls) == 2
    fake.result = RuntimeError("timeout")
    assert not is_equivalent("\\sqrt{2}", "2^{1/2}")


def test_math_verify_backend_without_the_package(monkeypatch):
    monkeypatch.setattr(math_answer, "_math_verify", lambda: None)
    with pytest.raises(ImportError, match="math-verify"):
        is_equivalent("1", "1", backend="math_verify")
    assert not is_equivalent("\\sqrt{2}", "2^{1/2}")       # auto falls back to the built-in


# ----------------------------------------------------------------------------- hostile model text

N = 100_000
HOSTILE = {
    "5000 ones": "1" * 5000,
    "10**5000": "1" + "0" * 5000,
    "hash 10**5000": "#### 1" + "0" * 5000,
    "boxed 5000 digits": "\\boxed{" + "1" * 5000 + "}",
    "long decimal": "#### 0." + "0" * 5000 + "1",
    "long thousands": "#### 1" + ",000" * 3000,
    "long mixed number": "#### 1 " + "1" * 5000 + "/3",
    "long frac": "#### \\frac{" + "1" * 5000 + "}{2}",
    "unclosed boxes": "\\boxed{" * (N // 7),
    "open braces": "{" * N,
    "boxed open braces": "\\boxed" + "{" * N,
    "bare boxes": "\\boxed " * (N // 7),
    "sign then spaces": "#### - " + " " * N + "x",
    "number then spaces": "#### 5" + " " * N + "#",
    "currency spaces": "#### $" + " \t" * (N // 2) + "-",
    "answer is commas": "The answer is " + "1," * (N // 2),
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_no_answer_in_bounded_time(text):
    """Unparsable model text scores 0 (never raises) and stays linear-time on 1e5 chars."""
    assert within(2.0, gsm8k_reward, text, "5") == 0.0
    pred = within(2.0, extract_answer, text)
    assert pred is None or within(2.0, parse_number, pred) is None
    assert not within(2.0, is_equivalent, text, "5")
    within(2.0, is_equivalent, text, text)  # compared as strings: no error either way


def test_unclosed_boxes_are_no_answer_and_closed_ones_still_count():
    assert within(2.0, extract_boxed, "\\boxed{" * (N // 7)) is None
    assert within(2.0, extract_boxed, "\\boxed{7}" + "\\boxed{" * (N // 7)) == "7"
    assert extract_boxed("\\boxed{a{b}c} then \\boxed{") == "a{b}c"
    assert extract_boxed("}{ \\boxed{x} {") == "x"


def test_over_long_numbers_are_not_numbers_but_normal_ones_are():
    assert parse_number("9" * (math_answer.MAX_NUMBER_DIGITS + 1)) is None
    assert parse_number("9" * math_answer.MAX_NUMBER_DIGITS) is not None
    assert parse_number("5   dollars") == parse_number("5 dollars")
    assert is_equivalent("50 \n %", "0.5")


@pytest.mark.parametrize("digits", [400, 1000])
def test_relative_tolerance_on_numbers_of_hundreds_of_digits_never_raises(digits):
    """A float tolerance times a Fraction of a few hundred digits overflowed (issue 29): the
    comparison is exact in fractions."""
    big = "9" * digits
    for pred, gold in ((big, "5"), ("5", big), (big, big), ("0." + "0" * (digits - 2) + "1", "5")):
        assert is_equivalent(pred, gold, rel_tol=1e-6) == (pred == gold)
        assert gsm8k_reward(f"#### {pred}", gold, rel_tol=1e-2) == float(pred == gold)
    assert is_equivalent(big, "9" * (digits - 1) + "8", rel_tol=1e-6)   # within the tolerance
    assert not is_equivalent(big, "9" * (digits - 1) + "8", rel_tol=0.0)

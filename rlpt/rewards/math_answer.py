"""Host-side math answer checking: extract a final answer from a response, compare it to gold.

Extraction (`extract_answer`) tries named extractors in a configurable order (default
`DEFAULT_ORDER`) and returns the first hit; each extractor takes the *last* match in the text:

- `hash`: the text after the last `####` (GSM8K's convention, arXiv 2110.14168), to end of line;
- `boxed`: the content of the last `\\boxed{...}` / `\\fbox{...}`, nested braces balanced;
- `answer_is`: what follows the last "the answer is" / "answer:", to the end of the sentence;
- `last_number`: the last number in the text (a fallback; it accepts lucky guesses).

Equivalence (`is_equivalent`) parses both sides as numbers when it can, with: thousands commas
(`1,000` == `1000`; `1.000` is one, not a thousand), decimals (`18.00` == `18`), fractions `3/4`,
LaTeX `\\frac{3}{4}` (`\\dfrac`, `\\tfrac`), mixed numbers `1 1/2`, negatives (also `-$5`, `$-5` and
the Unicode minus), currency symbols `$ € £` (also `\\$`), units words after the number (`18
dollars`, `5 km/h`), `\\text{...}`, `^\\circ`, markdown bold, a leading `x =`, a trailing `.`.
Numbers are compared exactly as fractions (`0.5` == `1/2`; `0.333` != `1/3`) unless `rel_tol > 0`.
A number followed by anything that is not units words (`2\\pi`, `2x`, `3, 4`, `5^2`) is not a
plain number; such answers are compared as normalised strings, and then through `math_verify`
(Hugging Face Math-Verify) when that optional package is importable.

Percent, decided: `p%` equals `p` (GSM8K's gold answers to "what percent" questions carry no
sign) and, while `percent_equals_fraction=True` (the default), also `p/100`. So `50%` == `50` and
`50%` == `0.5` == `1/2`, while `50` != `0.5`: with percents the relation is not transitive.

Backends: "builtin" (numbers, then normalised strings); "math_verify" (Math-Verify only; an
ImportError if it is absent); "auto" (default): when both sides are plain numbers the built-in
exact comparison decides, otherwise normalised string equality, then Math-Verify if importable.
No path evaluates model output as Python.

Untrusted input: model text never makes extraction or equivalence raise, and both run in time
linear in its length (brace matching is one pass; whitespace runs are collapsed before the number
pattern, so it cannot backtrack super-linearly). A number with more than `MAX_NUMBER_DIGITS`
digits is not a plain number (Python refuses to parse ints past 4300 digits), and an answer
longer than `MAX_VERIFY_CHARS` is never handed to Math-Verify.
"""
import functools
import re
from fractions import Fraction
from typing import Callable, Dict, Optional, Sequence, Set

DEFAULT_ORDER = ("hash", "boxed", "answer_is", "last_number")
MAX_NUMBER_DIGITS = 1000  # more digits than this: not a plain number (compared as a string)
MAX_VERIFY_CHARS = 2000   # longer answers skip Math-Verify (its parser is not linear-time)


# ----------------------------------------------------------------------------- extraction

def extract_hash(text: str) -> Optional[str]:
    """Text after the last `####`, up to the end of its line (None if absent or empty)."""
    found = re.findall(r"####[ \t]*([^\n]*)", text)
    if not found:
        return None
    return found[-1].strip() or None


def _matching_braces(text: str) -> Dict[int, int]:
    """{index of '{': index of its matching '}'} in one pass; unclosed '{' are absent."""
    close, stack = {}, []
    for m in re.finditer(r"[{}]", text):
        if m.group(0) == "{":
            stack.append(m.start())
        elif stack:
            close[stack.pop()] = m.start()
    return close


_BOXED = re.compile(r"\\(?:boxed|fbox)\b\s*")
_TOKEN = re.compile(r"[^\s$]*")


def extract_boxed(text: str, strip: bool = True) -> Optional[str]:
    """Content of the last `\\boxed{...}` or `\\fbox{...}` (nested braces), or `\\boxed 5`.

    With `strip=False` the braced content keeps its surrounding whitespace (RPT needs it).
    """
    close = None  # brace matches, computed once on the first braced box
    for m in reversed(list(_BOXED.finditer(text))):
        start = m.end()
        if text[start:start + 1] == "{":
            close = _matching_braces(text) if close is None else close
            inner = text[start + 1:close[start]] if start in close else None
        else:  # `\boxed 5`: one token
            inner = _TOKEN.match(text, start).group(0)
        if inner is not None and strip:
            inner = inner.strip()
        if inner:
            return inner
    return None


_ANSWER_IS = re.compile(r"(?:answer\s+is|answer\s*:)\s*:?\s*([^\n]+)", re.IGNORECASE)


def extract_answer_is(text: str) -> Optional[str]:
    """What follows the last "answer is" / "answer:", cut at the end of its sentence."""
    found = _ANSWER_IS.findall(text)
    if not found:
        return None
    clause = re.split(r"[.!?](?=\s|$)", found[-1])[0]
    return clause.strip() or None


_NUMBER_IN_TEXT = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?%?|-?\.\d+")


def extract_last_number(text: str) -> Optional[str]:
    """The last number in the text (with its sign, `$`, commas, decimals, `/d`, `%`)."""
    found = _NUMBER_IN_TEXT.findall(text)
    return found[-1] if found else None


EXTRACTORS: Dict[str, Callable[[str], Optional[str]]] = {
    "hash": extract_hash,
    "boxed": extract_boxed,
    "answer_is": extract_answer_is,
    "last_number": extract_last_number,
}


def extract_answer(response: str, order: Sequence[str] = DEFAULT_ORDER) -> Optional[str]:
    """The first answer found by the extractors named in `order` (see module docstring)."""
    for name in order:
        if name not in EXTRACTORS:
            raise KeyError(f"unknown answer extractor {name!r}; known: {sorted(EXTRACTORS)}")
        answer = EXTRACTORS[name](response)
        if answer is not None:
            return answer
    return None


# ----------------------------------------------------------------------------- normalisation

def _clean(s: str) -> str:
    """Removes LaTeX/markdown decoration that does not change the value."""
    s = s.strip().replace("\u2212", "-")
    for old, new in (("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\ ", " "), ("{,}", ","),
                     ("\\$", "$"), ("\\%", "%"), ("\\left", ""), ("\\right", ""),
                     ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("°", "")):
        s = s.replace(old, new)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = re.sub(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}", r"\1", s)
    s = s.strip().strip("*").strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if (len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right)
                and s.count(left) == (2 if left == right else 1)):
            s = s[len(left):-len(right)].strip()
    return s


_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_PLAIN_NUMBER = re.compile(rf"""
    (?:[a-z]\s*=\s*)?                                          # a leading "x ="
    (?P<sign1>[-+]?)\s*(?P<currency>[$€£]?)\s*(?P<sign2>[-+]?)\s*
    (?: \\frac\s*\{{\s*(?P<fnum>[-+]?(?:{_NUM}))\s*\}}\s*\{{\s*(?P<fden>[-+]?(?:{_NUM}))\s*\}}
      | (?P<whole>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)      # mixed number 1 1/2
      | (?P<num>{_NUM})(?:\s*/\s*(?P<den>{_NUM}))? )
    (?:\s*(?P<percent>%|percent\b))?
    (?P<units>(?:[\s.,;:!?'"()/€£-][A-Za-z\s.,;:!?'"()/€£-]*)?)   # units words, punctuation
    """, re.VERBOSE | re.IGNORECASE)


def _value(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def parse_number(answer: str) -> Optional[tuple]:
    """`(value: Fraction, is_percent: bool)` for a plain-number answer, else None.

    Never raises on model text: more than `MAX_NUMBER_DIGITS` digits, or a zero denominator,
    gives None. Linear time: whitespace runs are collapsed to one space before matching.
    """
    cleaned = re.sub(r"\s+", " ", _clean(answer))
    if sum(c.isdigit() for c in cleaned) > MAX_NUMBER_DIGITS:
        return None
    m = _PLAIN_NUMBER.fullmatch(cleaned)
    if m is None:
        return None
    g = m.groupdict()
    try:
        if g["fnum"] is not None:
            num, den = _value(g["fnum"]), _value(g["fden"])
        elif g["whole"] is not None:
            num = int(g["whole"]) * int(g["mden"]) + int(g["mnum"])
            den = Fraction(int(g["mden"]))
        else:
            num, den = _value(g["num"]), _value(g["den"]) if g["den"] else Fraction(1)
    except ValueError:  # a digit the regex accepts but int() refuses (a guard, not expected)
        return None
    if den == 0:
        return None
    sign = -1 if (g["sign1"] == "-") != (g["sign2"] == "-") else 1
    return sign * num / den, g["percent"] is not None


def _candidates(parsed: tuple, percent_equals_fraction: bool) -> Set[Fraction]:
    value, is_percent = parsed
    return {value, value / 100} if is_percent and percent_equals_fraction else {value}


def normalize_string(answer: str) -> str:
    """Whitespace-free, lowercased, decoration-free form for comparing non-numeric answers."""
    return re.sub(r"\s+", "", _clean(answer)).rstrip(".").lower()


# ----------------------------------------------------------------------------- equivalence

@functools.lru_cache(maxsize=None)
def _math_verify():
    """The math_verify module, or None when it is not installed (looked up once)."""
    try:
        import math_verify  # optional: pip install math-verify
    except ImportError:
        return None
    return math_verify


def _math_verify_equal(mv, pred: str, gold: str) -> bool:
    if len(pred) > MAX_VERIFY_CHARS or len(gold) > MAX_VERIFY_CHARS:
        return False
    try:
        return bool(mv.verify(mv.parse(f"${_clean(gold)}$"), mv.parse(f"${_clean(pred)}$")))
    except Exception:  # Math-Verify raises on unparsable input and on timeouts: not equal
        return False


def _numbers_equal(a: Set[Fraction], b: Set[Fraction], rel_tol: float) -> bool:
    if rel_tol <= 0:
        return bool(a & b)
    tol = Fraction(rel_tol)  # exact: a float times a Fraction of hundreds of digits overflows
    return any(abs(x - y) <= tol * max(abs(x), abs(y)) for x in a for y in b)


def is_equivalent(pred: Optional[str], gold: str, *, backend: str = "auto",
                  percent_equals_fraction: bool = True, rel_tol: float = 0.0) -> bool:
    """Whether the extracted answer `pred` equals `gold` (see module docstring for the rules)."""
    if backend not in ("auto", "builtin", "math_verify"):
        raise ValueError(f"unknown backend {backend!r}; known: 'auto', 'builtin', 'math_verify'")
    if pred is None or not pred.strip():
        return False
    if backend == "math_verify":
        mv = _math_verify()
        if mv is None:
            raise ImportError("backend='math_verify' needs the math-verify package "
                              "(pip install -e .[math])")
        return _math_verify_equal(mv, pred, gold)
    p, g = parse_number(pred), parse_number(gold)
    if p is not None and g is not None:
        return _numbers_equal(_candidates(p, percent_equals_fraction),
                              _candidates(g, percent_equals_fraction), rel_tol)
    if normalize_string(pred) == normalize_string(gold):
        return True
    mv = _math_verify() if backend == "auto" else None
    return mv is not None and _math_verify_equal(mv, pred, gold)


def gsm8k_reward(response: str, gold: str, *, order: Sequence[str] = DEFAULT_ORDER,
                 **equivalence_kwargs) -> float:
    """1.0 if the answer extracted from `response` equals the gold final answer, else 0.0.

    `gold` is the final answer string (the text after `####`, e.g. `"1,200"`), not the worked
    solution. `equivalence_kwargs` go to `is_equivalent`.
    """
    return float(is_equivalent(extract_answer(response, order), gold, **equivalence_kwargs))

"""Synthetic verifiable tasks whose rewards are computed on device from token arrays.

Tasks (registered as `get("task", name)(**knobs)`; rewards in `rlpt.tasks.synthetic_reward`):

* `addition`       prompt `<bos>123+456=`  answer `579`. Knobs: `min_digits`, `max_digits`
                   (each operand independently gets a digit count in that range),
                   `padded_fraction` (demos that write `0579`), `answer_check` (exact | numeric).
* `multiplication` prompt `<bos>12*34=`    answer `408`. Knobs: `min_digits_a`, `max_digits_a`,
                   `min_digits_b`, `max_digits_b`.
* `countdown`      prompt `<bos>3,5,7>22:`  completion e.g. `3*5+7`: an expression over `+ - *`
                   (and `/` when exact) using each given number at most once, equal to the goal.
                   Knobs: `min_numbers`, `max_numbers` (how many numbers), `min_number`,
                   `max_number` (their range), `allow_division`, `max_target` (goal cap).
                   The generator samples a random expression over all the numbers (in a shuffled
                   order) whose value is in [1, max_target] and records it as the worked solution,
                   so every prompt is solvable.

Batch contract: `task.make_batch(seed, step, batch_size)` returns numpy arrays, deterministic in
(seed, step) via `np.random.default_rng([seed, step])`, with shapes that depend only on the knobs:

    prompt        [B, P] int32  `<bos>` + prompt text, LEFT-padded with pad (0); P = task.prompt_len
    prompt_mask   [B, P] int32  1 on real prompt tokens (including bos), 0 on padding
    target        [B, A] int32  what the reward reads; A = task.target_width
                                addition/multiplication: answer digit tokens, right-padded with pad
                                countdown: [goal, n_1, ..., n_k, -1 ...] as integers
    target_len    [B]    int32  number of answer digits / number of given numbers k
    solution      [B, S] int32  worked solution tokens then eos, right-padded; S = task.solution_len
    solution_mask [B, S] int32  1 on solution tokens (including the eos)

Seeds: training uses seeds < 10_000 by convention; `eval_set(n, seed)` requires seed >= 10_000
(`EVAL_SEED`), so its random stream never coincides with a training stream. (Small problem
spaces such as 1-digit addition will still share individual problems with training.)
"""
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from rlpt.registry import get, register
from rlpt.tasks import synthetic_reward as rw
from rlpt.tokenizers import CharTokenizer

EVAL_SEED = 10_000
Example = Tuple[str, List[int], int, str]  # (prompt text, target row, target_len, solution text)


class SyntheticTask:
    """Shared batching, evaluation and decoding; subclasses implement `_sample` and `_check`."""

    name = ""
    reward_name = ""

    def __init__(self, prompt_len: int, target_width: int, solution_len: int, target_pad: int):
        self.tokenizer = CharTokenizer()
        self.prompt_len, self.target_width = prompt_len, target_width
        self.solution_len = solution_len
        self.target_pad = target_pad   # what fills `target` past target_len

    # -- subclass hooks -----------------------------------------------------------------------
    def _sample(self, rng: np.random.Generator) -> Example:
        raise NotImplementedError

    def _check(self, text: str, terminated: bool, example: Dict[str, np.ndarray]) -> float:
        raise NotImplementedError

    # -- batches ------------------------------------------------------------------------------
    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """A training batch, deterministic in (seed, step); see the module doc for the contract."""
        rng = np.random.default_rng([seed, step])
        return self._fill([self._sample(rng) for _ in range(batch_size)])

    def _fill(self, examples: List[Example]) -> Dict[str, np.ndarray]:
        """The batch arrays of `examples` (the module doc's contract)."""
        tok = self.tokenizer
        b, p, a, s = len(examples), self.prompt_len, self.target_width, self.solution_len
        out = {
            "prompt": np.full((b, p), tok.pad_id, np.int32),
            "prompt_mask": np.zeros((b, p), np.int32),
            "target": np.full((b, a), self.target_pad, np.int32),
            "target_len": np.zeros((b,), np.int32),
            "solution": np.full((b, s), tok.pad_id, np.int32),
            "solution_mask": np.zeros((b, s), np.int32),
        }
        for i, (prompt, target, target_len, solution) in enumerate(examples):
            ids = tok.encode(prompt, bos=True)
            sol = tok.encode(solution, eos=True)
            assert len(ids) <= p and len(target) <= a and len(sol) <= s, (prompt, target, solution)
            out["prompt"][i, p - len(ids):] = ids
            out["prompt_mask"][i, p - len(ids):] = 1
            out["target"][i, :len(target)] = target
            out["target_len"][i] = target_len
            out["solution"][i, :len(sol)] = sol
            out["solution_mask"][i, :len(sol)] = 1
        return out

    @staticmethod
    def check_eval_seed(seed: int) -> None:
        """Held-out streams use seeds >= EVAL_SEED; training's are below (module doc)."""
        if seed < EVAL_SEED:
            raise ValueError(f"eval seeds must be >= {EVAL_SEED} "
                             f"(training uses seeds < {EVAL_SEED})")

    def eval_set(self, n: int, seed: int = EVAL_SEED) -> Dict[str, np.ndarray]:
        """A fixed held-out batch of n examples; seed must be >= EVAL_SEED (training's are not)."""
        self.check_eval_seed(seed)
        return self.make_batch(seed, 0, n)

    # -- rewards ------------------------------------------------------------------------------
    def reward(self, completion, completion_mask, target, target_len):
        """On-device reward -> (rewards [N] float32, aux dict); see rlpt.tasks.synthetic_reward."""
        return get("reward", self.reward_name)(completion, completion_mask, target, target_len)

    def reference_reward(self, completion_str: str, example: Dict[str, np.ndarray],
                         terminated: bool = True) -> float:
        """Host-side pure-Python reward for one completion.

        `completion_str` is the text the model produced before its eos (`terminated=True`) or
        before the end of its token budget without any eos (`terminated=False`, always 0).
        `example` is one row of a batch (`task.example(batch, i)`); only target/target_len are read.
        """
        return self._check(completion_str, terminated, example)

    # -- printing -----------------------------------------------------------------------------
    @staticmethod
    def example(batch: Dict[str, np.ndarray], i: int) -> Dict[str, np.ndarray]:
        """Row i of a batch as a dict of 1-D arrays."""
        return {k: np.asarray(v)[i] for k, v in batch.items()}

    def decode_prompt(self, prompt: Union[np.ndarray, Sequence[int]]) -> Union[str, List[str]]:
        """Prompt text without bos/padding; a [B,P] array gives a list of strings."""
        prompt = np.asarray(prompt)
        if prompt.ndim == 2:
            return [self.tokenizer.decode(row) for row in prompt]
        return self.tokenizer.decode(prompt)

    def decode_completion(self, tokens, mask=None) -> str:
        """Completion text as the reward reads it, with `<no eos>` appended if unterminated."""
        text, terminated = rw.completion_text(tokens, mask)
        return text if terminated else text + "<no eos>"


def sample_int(rng: np.random.Generator, min_digits: int, max_digits: int) -> int:
    """A uniform number of digits in [min, max], then a uniform number with that many digits."""
    n = int(rng.integers(min_digits, max_digits + 1))
    lo = 0 if n == 1 else 10 ** (n - 1)
    return int(rng.integers(lo, 10 ** n))


def check_digits(lo: int, hi: int, what: str):
    if not 1 <= lo <= hi <= 9:
        raise ValueError(f"{what}: need 1 <= min <= max <= 9 digits, got {lo}..{hi}")


class _ArithmeticTask(SyntheticTask):
    """`a<op>b=` -> the result's digits; the reward is exact match of digits then eos."""

    reward_name = "exact_answer"
    symbol = ""

    def __init__(self, digits_a: Tuple[int, int], digits_b: Tuple[int, int], answer_digits: int):
        self.digits_a, self.digits_b = digits_a, digits_b
        prompt_len = 1 + digits_a[1] + 1 + digits_b[1] + 1  # bos a op b =
        super().__init__(prompt_len, answer_digits, answer_digits + 1, target_pad=0)  # pad id

    def _apply(self, a: int, b: int) -> int:
        raise NotImplementedError

    def _sample(self, rng):
        a, b = sample_int(rng, *self.digits_a), sample_int(rng, *self.digits_b)
        answer = str(self._apply(a, b))
        return f"{a}{self.symbol}{b}=", self.tokenizer.encode(answer), len(answer), answer

    def _check(self, text, terminated, example):
        answer = self.tokenizer.decode(example["target"][: int(example["target_len"])])
        return rw.exact_answer_reference(text, terminated, answer)[0]


ANSWER_CHECKS = {"exact": "exact_answer", "numeric": "numeric_answer"}


@register("task", "addition")
class AdditionTask(_ArithmeticTask):
    """`123+456=` -> `579`; each operand has min_digits..max_digits digits.

    Two surface forms (General-Reasoner's setting, arXiv 2505.14652): `padded_fraction` of the
    SFT demonstrations write the answer zero-padded to the answer width (`0579` for
    max_digits 3); `answer_check` is the task's own verifier, `exact` (the digits, no leading
    zeros: rlpt.tasks.synthetic_reward.exact_answer) or `numeric` (leading zeros allowed:
    numeric_answer, which accepts both forms)."""

    name, symbol = "addition", "+"

    def __init__(self, min_digits: int = 1, max_digits: int = 3, padded_fraction: float = 0.0,
                 answer_check: str = "exact"):
        check_digits(min_digits, max_digits, "addition")
        if not 0.0 <= padded_fraction <= 1.0:
            raise ValueError(f"addition: padded_fraction={padded_fraction} not in [0, 1]")
        if answer_check not in ANSWER_CHECKS:
            raise ValueError(f"addition: answer_check={answer_check!r}; known: "
                             f"{list(ANSWER_CHECKS)}")
        self.padded_fraction, self.answer_check = padded_fraction, answer_check
        self.reward_name = ANSWER_CHECKS[answer_check]
        super().__init__((min_digits, max_digits), (min_digits, max_digits), max_digits + 1)

    def _apply(self, a, b):
        return a + b

    def _sample(self, rng):
        prompt, target, n, answer = super()._sample(rng)
        if self.padded_fraction and rng.random() < self.padded_fraction:
            answer = answer.zfill(self.target_width)
        return prompt, target, n, answer

    def _check(self, text, terminated, example):
        answer = self.tokenizer.decode(example["target"][: int(example["target_len"])])
        ref = (rw.numeric_answer_reference if self.answer_check == "numeric"
               else rw.exact_answer_reference)
        return ref(text, terminated, answer)[0]


@register("task", "multiplication")
class MultiplicationTask(_ArithmeticTask):
    """`12*34=` -> `408`; operand a has min_digits_a..max_digits_a digits, b likewise."""

    name, symbol = "multiplication", "*"

    def __init__(self, min_digits_a: int = 1, max_digits_a: int = 2, min_digits_b: int = 1,
                 max_digits_b: int = 1):
        check_digits(min_digits_a, max_digits_a, "multiplication operand a")
        check_digits(min_digits_b, max_digits_b, "multiplication operand b")
        super().__init__((min_digits_a, max_digits_a), (min_digits_b, max_digits_b),
                         max_digits_a + max_digits_b)

    def _apply(self, a, b):
        return a * b


@register("task", "countdown")
class CountdownTask(SyntheticTask):
    """`3,5,7>22:` -> e.g. `3*5+7`; numbers in [min_number, max_number], goal in [1, max_target]."""

    name = reward_name = "countdown"

    def __init__(self, min_numbers: int = 3, max_numbers: int = 3, min_number: int = 1,
                 max_number: int = 10, allow_division: bool = False, max_target: int = 0):
        if not 1 <= min_numbers <= max_numbers:
            raise ValueError(f"countdown: need 1 <= min_numbers <= max_numbers, got "
                             f"{min_numbers}..{max_numbers}")
        if not 1 <= min_number <= max_number:
            raise ValueError(f"countdown: need 1 <= min_number <= max_number, got "
                             f"{min_number}..{max_number}")
        bound = (max_number + 1) ** max_numbers - 1  # >= |any expression value|; see rewards doc
        if bound >= 2 ** 31:
            raise ValueError(f"countdown: (max_number+1)**max_numbers = {bound + 1} must be "
                             "< 2**31 so that on-device int32 arithmetic is exact")
        self.min_numbers, self.max_numbers = min_numbers, max_numbers
        self.min_number, self.max_number = min_number, max_number
        self.allow_division = allow_division
        self.max_target = max_target if max_target > 0 else bound  # 0: no cap beyond the bound
        if self.max_target < max_numbers * max_number:
            raise ValueError(f"countdown: max_target={max_target} is below the all-`+` fallback "
                             f"{max_numbers * max_number}")
        dn, dt, k = len(str(max_number)), len(str(self.max_target)), max_numbers
        prompt_len = 1 + k * dn + (k - 1) + 1 + dt + 1  # bos n,n,n > goal :
        super().__init__(prompt_len, 1 + k, k * dn + (k - 1) + 1, target_pad=-1)

    def _sample_expression(self, rng, numbers: List[int]) -> Tuple[List[int], List[str]]:
        """A random `num (op num)*` over all numbers in a random order; `/` only when exact."""
        lits = [numbers[j] for j in rng.permutation(len(numbers))]
        ops, term = [], lits[0]
        for x in lits[1:]:
            choices = ["+", "-", "*"] + (["/"] if self.allow_division and term % x == 0 else [])
            op = choices[int(rng.integers(len(choices)))]
            ops.append(op)
            term = term * x if op == "*" else term // x if op == "/" else x
        return lits, ops

    def _sample(self, rng):
        k = int(rng.integers(self.min_numbers, self.max_numbers + 1))
        numbers = [int(x) for x in rng.integers(self.min_number, self.max_number + 1, size=k)]
        for _ in range(100):
            lits, ops = self._sample_expression(rng, numbers)
            value = rw.evaluate_countdown(lits, ops)
            if value is not None and 1 <= value <= self.max_target:
                break
        else:  # all-`+` always lands in [1, max_target] (checked in __init__)
            lits, ops = numbers, ["+"] * (k - 1)
            value = sum(numbers)
        solution = str(lits[0]) + "".join(op + str(x) for op, x in zip(ops, lits[1:]))
        prompt = ",".join(map(str, numbers)) + f">{value}:"
        return prompt, [value] + numbers, k, solution

    def _check(self, text, terminated, example):
        k = int(example["target_len"])
        numbers = [int(x) for x in example["target"][1:1 + k]]
        return rw.countdown_reference(text, terminated, numbers, int(example["target"][0]))[0]

"""Scratchpad addition: a variable-length worked chain of steps, then `#` and the final answer.

    prompt    `<bos>457+68=`
    solution  `7+8=15,5+6+1=12,4+1=5#525<eos>`

The worked solution adds column by column from the least significant digit: each step writes
the column's digits (those of the operands that still have one, then `1` when a carry comes
in), `=`, and the column sum; steps are separated by `,`; then the marker `#` and the answer.
Its length therefore depends on the problem (number of columns, digits present per column,
carries): 8 tokens for `3+4=` (`3+4=7#7` + eos), 32 for two 3-digit operands with carries, at
most `10 n + 2` for n columns. The reward (`rlpt.tasks.scratchpad_reward`, registered
`scratchpad_answer`) reads only the digits after the last `#`, so a policy is free to shorten,
pad or ramble in the chain.

Registered as `get("task", "scratchpad_addition")(**knobs)`. Knobs:

* `min_digits`, `max_digits` (1, 3): each operand independently gets a digit count in that
  range (as in `addition`);
* hard split: `hard_max_digits` (0 = none) and `hard_frac` (0.5): a row is hard with
  probability `hard_frac`; then one operand has `max_digits + 1 .. hard_max_digits` digits and
  the other `min_digits ..` that many (which one is longer is a coin flip). Hard rows carry no
  SFT data unless `hard_solutions=True`: in `sft_batch` (the warm-up's batches, read by
  rlpt.tasks.sft_batch) their `solution_mask` is all 0, so the SFT warm-up never sees a worked
  solution longer than `max_digits` columns and the SFT model's pass@k on hard rows is near zero
  (the hard split's number is in docs/tasks.md). `make_batch` (the RL batches) keeps every
  row's gold solution: guidance algorithms (ExPO, ReLIFT, UFT) read it through `solution_mask`.

Batch contract: that of `rlpt.tasks.synthetic` (`prompt`, `prompt_mask`, `target` = answer
digit tokens right-padded with pad and, in its last column, the worked solution's length in
tokens with the eos (read only for the reward's `excess_len_*` metrics), `target_len`,
`solution`, `solution_mask`) plus
`difficulty [B] int32`: the digit count of the longer operand (= the number of columns of the
worked solution; `> max_digits` exactly on hard rows).
"""
from typing import Dict

import numpy as np

from rlpt.registry import register
from rlpt.tasks import scratchpad_reward as rw
from rlpt.tasks.synthetic import SyntheticTask, check_digits, sample_int


def worked_solution(a: int, b: int) -> str:
    """`7+8=15,5+6+1=12,4+1=5#525` for 457 + 68 (module doc)."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        terms = [d[i] for d in (da, db) if i < len(d)] + (["1"] if carry else [])
        s = sum(int(x) for x in terms)
        steps.append("+".join(terms) + "=" + str(s))
        carry = s // 10
    return ",".join(steps) + rw.MARK + str(a + b)


def max_solution_tokens(columns: int) -> int:
    """Upper bound on a worked solution's tokens (eos included) for `columns` columns."""
    return 10 * columns + 2


@register("task", "scratchpad_addition")
class ScratchpadAdditionTask(SyntheticTask):
    """`457+68=` -> `7+8=15,5+6+1=12,4+1=5#525`; reward on the digits after the last `#`."""

    name = "scratchpad_addition"
    reward_name = "scratchpad_answer"

    def __init__(self, min_digits: int = 1, max_digits: int = 3, hard_max_digits: int = 0,
                 hard_frac: float = 0.5, hard_solutions: bool = False):
        check_digits(min_digits, max_digits, "scratchpad_addition")
        if hard_max_digits:
            check_digits(max_digits + 1, hard_max_digits, "scratchpad_addition hard split "
                         "(max_digits + 1 .. hard_max_digits)")
            if not 0.0 < hard_frac <= 1.0:
                raise ValueError(f"scratchpad_addition: hard_frac={hard_frac} must be in (0, 1]")
        self.min_digits, self.max_digits = min_digits, max_digits
        self.hard_max_digits, self.hard_frac = hard_max_digits, hard_frac
        self.hard_solutions = hard_solutions
        n = max(max_digits, hard_max_digits)
        super().__init__(prompt_len=2 * n + 3, target_width=n + 2,  # answer, gold length
                         solution_len=max_solution_tokens(n), target_pad=0)

    def _operands(self, rng):
        if self.hard_max_digits and rng.random() < self.hard_frac:
            long_digits = int(rng.integers(self.max_digits + 1, self.hard_max_digits + 1))
            x = sample_int(rng, long_digits, long_digits)
            y = sample_int(rng, self.min_digits, long_digits)
            return (x, y) if rng.random() < 0.5 else (y, x)
        return (sample_int(rng, self.min_digits, self.max_digits),
                sample_int(rng, self.min_digits, self.max_digits))

    def _sample(self, rng):
        a, b = self._operands(rng)
        answer, solution = str(a + b), worked_solution(a, b)
        target = self.tokenizer.encode(answer)
        target += [0] * (self.target_width - 1 - len(target)) + [len(solution) + 1]
        return f"{a}+{b}=", target, len(answer), solution

    def _check(self, text, terminated, example):
        answer = self.tokenizer.decode(example["target"][: int(example["target_len"])])
        return rw.scratchpad_reference(text, terminated, answer)[0]

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """The synthetic batch (deterministic in (seed, step)) plus `difficulty` (module doc)."""
        batch = super().make_batch(seed, step, batch_size)
        batch["difficulty"] = np.array(
            [max(len(x) for x in p.rstrip("=").split("+")) for p in self.decode_prompt(
                batch["prompt"])], np.int32)
        return batch

    def sft_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """The warm-up's batch: make_batch with the hard rows' `solution_mask` 0 (no SFT data on
        them) unless `hard_solutions`."""
        batch = self.make_batch(seed, step, batch_size)
        if not self.hard_solutions:
            batch["solution_mask"][batch["difficulty"] > self.max_digits] = 0
        return batch

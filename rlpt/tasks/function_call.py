"""The `function_call` task: requests in words -> calls of typed tools (ToolRL, arXiv 2504.13958;
issue 27, claim 10), with tool combinations held out of training.

    prompt   <bos>plus 12 7;flip ab?
    answer   sum(a=12,b=7)|rev(w=ab)<eos>

Six tools (`TOOLS`), each asked for by its own word, with typed arguments: integers 0..`max_int`
and words of 2-3 letters. A prompt asks for one call (kind 0) or two calls of different tools
(kind 1: a pair seen in training; kind 2: a pair in `heldout`, never in a training or SFT batch).
Training batches hold kinds 0 and 1 (`single_frac` of them kind 0); `eval_set` holds the three
kinds in equal shares with `difficulty` = the kind, so every evaluation metric is also reported per
kind (`greedy_acc_d2`: held-out combinations). The rewards (rlpt/tasks/function_call_reward.py):
the exact call match (the task's), and ToolRL's fine-grained format + correctness reward
(`reward.proxy = "toolrl_fine_grained"`).
"""
from typing import Dict

import numpy as np

from rlpt.registry import register
from rlpt.tasks import function_call_reward as fc
from rlpt.tasks.synthetic import EVAL_SEED, SyntheticTask

# (name, the word that asks for it, [(key, type), ...])
TOOLS = (("sum", "plus", (("a", "int"), ("b", "int"))),
         ("mul", "times", (("a", "int"), ("b", "int"))),
         ("neg", "minus", (("x", "int"),)),
         ("rev", "flip", (("w", "word"),)),
         ("cap", "upper", (("w", "word"),)),
         ("pad", "fill", (("w", "word"), ("n", "int"))))
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def parse_pairs(text: str, n_tools: int = len(TOOLS)):
    """'0-3,1-4' -> {(0, 3), (1, 4)} (unordered tool-index pairs)."""
    pairs = set()
    for part in [p for p in str(text).split(",") if p.strip()]:
        try:
            i, j = (int(x) for x in part.split("-"))
        except ValueError:
            raise ValueError(f"function_call: heldout={text!r}: {part!r} is not 'i-j'") from None
        if not (0 <= i < n_tools and 0 <= j < n_tools and i != j):
            raise ValueError(f"function_call: heldout pair {part!r} needs two different tool "
                             f"indices in 0..{n_tools - 1}")
        pairs.add((min(i, j), max(i, j)))
    return pairs


@register("task", "function_call")
class FunctionCallTask(SyntheticTask):
    name, reward_name = "function_call", "function_call"

    def __init__(self, single_frac: float = 0.3, heldout: str = "0-3,1-4,2-5", max_int: int = 99):
        if not 0.0 <= single_frac <= 1.0:
            raise ValueError(f"function_call: single_frac={single_frac} must be in [0, 1]")
        if not 0 <= max_int <= 99:
            raise ValueError(f"function_call: max_int={max_int} must be in 0..99 (two digits)")
        self.single_frac, self.max_int = single_frac, max_int
        self.heldout = parse_pairs(heldout)
        all_pairs = {(i, j) for i in range(len(TOOLS)) for j in range(i + 1, len(TOOLS))}
        self.seen = sorted(all_pairs - self.heldout)
        self.heldout = sorted(self.heldout)
        if not self.seen:
            raise ValueError(f"function_call: heldout={heldout!r} leaves no pair for training")
        # <bos> + two requests of at most 11 characters, ';' and '?'
        super().__init__(prompt_len=1 + 2 * 11 + 2, target_width=fc.MAX_CALLS * fc.CALL_WIDTH,
                         solution_len=2 * 15 + 1 + 1, target_pad=-1)

    def _value(self, rng, kind: str) -> str:
        if kind == "int":
            return str(int(rng.integers(0, self.max_int + 1)))
        return "".join(LETTERS[int(i)] for i in rng.integers(0, 26, size=int(rng.integers(2, 4))))

    def _example(self, rng, kind: int):
        if kind == 0:
            tools = [int(rng.integers(len(TOOLS)))]
        else:
            pairs = self.seen if kind == 1 else self.heldout
            tools = list(pairs[int(rng.integers(len(pairs)))])
            if rng.random() < 0.5:
                tools.reverse()
        requests, calls = [], []
        for t in tools:
            name, word, params = TOOLS[t]
            values = [self._value(rng, typ) for _, typ in params]
            requests.append(" ".join([word] + values))
            calls.append((name, [(key, v) for (key, _), v in zip(params, values)]))
        solution = "|".join(f"{n}(" + ",".join(f"{k}={v}" for k, v in a) + ")" for n, a in calls)
        return ";".join(requests) + "?", fc.gold_row(calls), len(calls), solution

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """Training (and SFT) rows: single calls and seen pairs only."""
        rng = np.random.default_rng([seed, step])
        kinds = [0 if rng.random() < self.single_frac else 1 for _ in range(batch_size)]
        return self._fill([self._example(rng, k) for k in kinds])

    def eval_set(self, n: int, seed: int = EVAL_SEED) -> Dict[str, np.ndarray]:
        """n held-out rows, the three kinds in turn (0, 1, 2, 0, ...), `difficulty` = kind."""
        self.check_eval_seed(seed)
        kinds = [i % 3 for i in range(n)]
        rng = np.random.default_rng([seed, 0])
        out = self._fill([self._example(rng, k) for k in kinds])
        out["difficulty"] = np.asarray(kinds, np.int32)
        return out

    def gold_calls(self, example: Dict[str, np.ndarray]):
        """The gold calls of one row (`task.example(batch, i)`), as (name, [(key, value)])."""
        row = np.asarray(example["target"]).reshape(fc.MAX_CALLS, fc.CALL_WIDTH)
        calls = []
        for cells in row[:int(example["target_len"])]:
            args = [(fc.code_text(cells[2 + 2 * a]), fc.code_text(cells[3 + 2 * a]))
                    for a in range(int(cells[1]))]
            calls.append((fc.code_text(cells[0]), args))
        return calls

    def _check(self, text, terminated, example):
        return fc.exact_reference(text, terminated, self.gold_calls(example))

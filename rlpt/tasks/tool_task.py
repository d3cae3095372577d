"""`tool_multiplication`: large products a tiny model cannot compute in its head, with a calculator.

Prompt `<bos>123*45=`, target the product's digits. A completion may call the calculator
(`rlpt.envs.calculator`, format `[expr]` -> injected `<value>`) any number of times up to the
rollout's turn limit, then writes the final answer and eos:

    with a call   `[123*45]<5535>5535<eos>`   (`<5535>` is written by the environment)
    direct        `5535<eos>`

SFT demonstrations (`solution`) show the call for a `call_fraction` of the examples and the
direct answer for the rest; the direct answers are correct, but a tiny model cannot learn
3-digit x 2-digit products, so its direct answers are mostly wrong, and RL has to discover that
calling pays (ARTIST, arXiv 2505.01441, learns when and how to call tools from outcome reward
alone). `solution_loss_mask` is 0 on the demo's tool result, which is input, not a target.

Reward (`tool_answer_reward`, on device), over `(tokens, source)` where `source` is 0 on padding,
1 on model tokens and 2 on tool tokens (`rlpt.envs.tool_rollout.completion_source`):

* final answer: the model tokens after the last tool token and before the first model eos;
* `correct`: terminated and the final answer is exactly the target digits;
* `format_ok`: terminated and the final answer is one or more digits;
* `tool_success`: answered calls whose result is a value (not `<?>`) / answered calls (0 with no
  call), read from the tool tokens;
* `reward = answer_reward * correct + format_reward * format_ok + tool_reward * tool_success
  - call_cost * num_calls`.
  ARTIST's reward is answer 2 + format + tool-success fraction; the default here is correctness
  only (answer_reward=1, the other three 0), so any rise in the call rate is learned from outcome.
  `call_cost` > 0 charges each answered call: calling then pays only where the tool raises the
  chance of a correct answer by more than the charge.

Two calls (`addend_digits` = d > 0): the prompt is `a*b+c=` with c of d digits, the target
a*b+c, and a demonstration that calls makes two calls, the second on the first's result:

    `[123*45]<5535>[5535+678]<6213>6213<eos>`

(the two-call task of issue 27's claim 11, Agent Lightning: an episode of three LLM calls).

A mix of difficulties (`easy_fraction` > 0): that share of the prompts has both operands of 1 to
`easy_max_digits` digits (products a tiny model can learn by heart), and every batch gains
`difficulty [B] int32`, the digit count of the longer operand, so evaluations report accuracy
and call rates per difficulty (when to call: issue 27's claim 12).
"""
from typing import Dict, Sequence

import jax.numpy as jnp
import numpy as np

from rlpt.envs.calculator import ERROR_MARK, RESULT_CLOSE, RESULT_OPEN
from rlpt.registry import register
from rlpt.sampling import transition_ids
from rlpt.tasks.synthetic import SyntheticTask, check_digits, sample_int
from rlpt.tasks.synthetic_reward import EOS_ID, is_digit


@register("reward", "tool_answer")
def tool_answer_reward(completion, source, target, target_len, answer_reward: float = 1.0,
                       format_reward: float = 0.0, tool_reward: float = 0.0,
                       call_cost: float = 0.0):
    """-> (rewards [N], aux {correct, format_ok, num_calls, tool_success}); see the module doc."""
    tok = jnp.asarray(completion, jnp.int32)
    src = jnp.asarray(source, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    target_len = jnp.asarray(target_len, jnp.int32)
    T, A = tok.shape[-1], target.shape[-1]
    valid = jnp.cumprod((src != 0).astype(jnp.int32), axis=-1).astype(bool)
    model, tool = valid & (src == 1), valid & (src == 2)
    pos = jnp.arange(T)[None, :]
    is_eos = model & (tok == EOS_ID)
    terminated = is_eos.any(-1)
    eos_pos = jnp.where(terminated, jnp.argmax(is_eos, axis=-1), T)
    start = jnp.max(jnp.where(tool & (pos < eos_pos[:, None]), pos, -1), axis=-1) + 1
    ans_len = eos_pos - start
    in_ans = (pos >= start[:, None]) & (pos < eos_pos[:, None])
    format_ok = terminated & (ans_len >= 1) & jnp.all(is_digit(tok) | ~in_ans, axis=-1)
    idx = jnp.clip(start[:, None] + jnp.arange(A)[None, :], 0, T - 1)
    got = jnp.take_along_axis(tok, idx, axis=-1)
    match = jnp.all((got == target) | (jnp.arange(A)[None, :] >= target_len[:, None]), axis=-1)
    correct = terminated & (ans_len == target_len) & match

    calls = transition_ids(tool)[:, -1]   # tool-result blocks = calls answered
    errors = (tool & (tok == ERROR_MARK)).sum(-1)
    success = jnp.where(calls > 0, (calls - errors) / jnp.maximum(calls, 1), 0.0)
    reward = (answer_reward * correct + format_reward * format_ok + tool_reward * success
              - call_cost * calls)
    aux = {"correct": correct, "format_ok": format_ok, "num_calls": calls,
           "tool_success": success}
    return reward.astype(jnp.float32), aux


def tool_answer_reference(tokens: Sequence[int], source: Sequence[int], answer: str,
                          tok) -> Dict[str, float]:
    """Plain-Python `tool_answer_reward` components for one completion (the tests' reference)."""
    pieces, kinds = [], []
    for t, s in zip(np.asarray(tokens).tolist(), np.asarray(source).tolist()):
        if s == 0:
            break
        if s == 1 and t == EOS_ID:
            kinds.append("eos")
            break
        pieces.append(tok.itos[t])
        kinds.append("tool" if s == 2 else "model")
    terminated = bool(kinds) and kinds[-1] == "eos"
    kinds = kinds[:-1] if terminated else kinds
    last_tool = max([i for i, k in enumerate(kinds) if k == "tool"], default=-1)
    final = "".join(pieces[last_tool + 1:])
    segments, i = [], 0
    while i < len(kinds):
        if kinds[i] == "tool":
            j = i
            while j < len(kinds) and kinds[j] == "tool":
                j += 1
            segments.append("".join(pieces[i:j]))
            i = j
        else:
            i += 1
    ok = [("?" not in seg) for seg in segments]
    return {"correct": float(terminated and final == answer),
            "format_ok": float(terminated and len(final) > 0
                               and all(c in "0123456789" for c in final)),
            "num_calls": float(len(segments)),
            "tool_success": sum(ok) / len(ok) if ok else 0.0}


REWARD_KWARGS = ("answer_reward", "format_reward", "tool_reward", "call_cost")


@register("task", "tool_multiplication")
class ToolMultiplicationTask(SyntheticTask):
    """`123*45=` -> `5535`, with SFT demos that call the calculator for `call_fraction` of the
    examples. Knobs: digit ranges of both operands, call_fraction, and the reward weights."""

    name = "tool_multiplication"
    reward_name = "tool_answer"

    def __init__(self, min_digits_a: int = 3, max_digits_a: int = 3, min_digits_b: int = 2,
                 max_digits_b: int = 2, call_fraction: float = 0.5, answer_reward: float = 1.0,
                 format_reward: float = 0.0, tool_reward: float = 0.0, call_cost: float = 0.0,
                 easy_fraction: float = 0.0, easy_max_digits: int = 1, addend_digits: int = 0):
        check_digits(min_digits_a, max_digits_a, "tool_multiplication operand a")
        check_digits(min_digits_b, max_digits_b, "tool_multiplication operand b")
        if addend_digits and not 1 <= addend_digits <= max(max_digits_a, max_digits_b):
            raise ValueError(f"tool_multiplication: addend_digits={addend_digits} must be 0 (no "
                             f"addend) or 1..{max(max_digits_a, max_digits_b)} (the longer "
                             f"operand's digits, so a*b+c has no more digits than a*b can)")
        if addend_digits and easy_fraction:
            raise ValueError("tool_multiplication: addend_digits and easy_fraction together are "
                             "not supported (the difficulty labels read `a*b=` prompts)")
        self.addend_digits = addend_digits
        for name, v in (("call_fraction", call_fraction), ("easy_fraction", easy_fraction)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"tool_multiplication: {name}={v} not in [0, 1]")
        if easy_fraction and not 1 <= easy_max_digits < max(min_digits_a, min_digits_b):
            raise ValueError(f"tool_multiplication: easy_max_digits={easy_max_digits} must be "
                             f">= 1 and below the hard operands' longest minimum "
                             f"({max(min_digits_a, min_digits_b)}), so the difficulties differ")
        self.digits_a, self.digits_b = (min_digits_a, max_digits_a), (min_digits_b, max_digits_b)
        self.call_fraction = call_fraction
        self.easy_fraction, self.easy_digits = easy_fraction, (1, easy_max_digits)
        self.weights = dict(answer_reward=answer_reward, format_reward=format_reward,
                            tool_reward=tool_reward, call_cost=call_cost)
        product = max_digits_a + 1 + max_digits_b
        ans = max_digits_a + max_digits_b
        add = (1 + addend_digits) if addend_digits else 0          # `+c`
        # solution: `[a*b]` `<p>` (`[p+c]` `<ans>`) ans eos
        second = (ans + add + 2) + (ans + 2) if addend_digits else 0
        super().__init__(prompt_len=1 + product + add + 1, target_width=ans,
                         solution_len=(product + 2) + (ans + 2) + second + ans + 1,
                         target_pad=0)

    @staticmethod
    def sft_source(kwargs):
        """The warm-up's data without the reward weights (rlpt.tasks.sft_source): arms that
        differ only in how RL scores a completion share their SFT models in a sweep."""
        return "tool_multiplication", {k: v for k, v in kwargs.items() if k not in REWARD_KWARGS}

    def _sample(self, rng):
        easy = self.easy_fraction > 0 and rng.random() < self.easy_fraction
        a = sample_int(rng, *(self.easy_digits if easy else self.digits_a))
        b = sample_int(rng, *(self.easy_digits if easy else self.digits_b))
        call = rng.random() < self.call_fraction
        if self.addend_digits:
            c = sample_int(rng, self.addend_digits, self.addend_digits)
            answer = str(a * b + c)
            solution = (f"[{a}*{b}]<{a * b}>[{a * b}+{c}]<{answer}>{answer}" if call
                        else answer)
            return f"{a}*{b}+{c}=", self.tokenizer.encode(answer), len(answer), solution
        answer = str(a * b)
        solution = f"[{a}*{b}]<{answer}>{answer}" if call else answer
        return f"{a}*{b}=", self.tokenizer.encode(answer), len(answer), solution

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """The synthetic batch contract plus `solution_loss_mask` (0 on the demo's `<...>`s), and
        with a mix of difficulties `difficulty` (the longer operand's digit count)."""
        out = super().make_batch(seed, step, batch_size)
        if self.easy_fraction > 0:
            out["difficulty"] = np.array([max(len(x) for x in t.rstrip("=").split("*"))
                                          for t in self.decode_prompt(out["prompt"])], np.int32)
        sol = out["solution"]
        opened = np.cumsum(sol == RESULT_OPEN, axis=1)
        closed_before = np.cumsum(sol == RESULT_CLOSE, axis=1) - (sol == RESULT_CLOSE)
        in_result = opened > closed_before              # inside a `<...>`, both marks included
        out["solution_loss_mask"] = (out["solution_mask"] * ~in_result).astype(np.int32)
        return out

    def calculator_environment(self, tcfg, batch: Dict[str, np.ndarray] = None):
        """This game as an `Environment` with its Python and its compiled protocol
        (rlpt.envs.calculator_env) over the prompts of `batch` (default `make_batch(0, 0, 64)`);
        the trainer plays its `compiled` rollout."""
        from rlpt.envs.calculator_env import calculator_environment
        b = self.make_batch(0, 0, 64) if batch is None else batch
        dec = self.tokenizer.decode
        rows = [{"prompt": dec(p[m > 0]), "answer": dec(t[:n])} for p, m, t, n in
                zip(b["prompt"], b["prompt_mask"], b["target"], b["target_len"])]
        return calculator_environment(rows, tcfg)

    def reward(self, completion, source, target, target_len):
        """On-device reward over (tokens, source) with this task's weights."""
        return tool_answer_reward(completion, source, target, target_len, **self.weights)

    def host_reward(self, tokens, source, target, target_len) -> np.ndarray:
        """The same reward in plain Python over numpy arrays (for the host boundary)."""
        out = np.zeros(tokens.shape[0], np.float32)
        w = self.weights
        for i in range(tokens.shape[0]):
            answer = self.tokenizer.decode(target[i][: int(target_len[i])])
            r = tool_answer_reference(tokens[i], source[i], answer, self.tokenizer)
            out[i] = (w["answer_reward"] * r["correct"] + w["format_reward"] * r["format_ok"]
                      + w["tool_reward"] * r["tool_success"] - w["call_cost"] * r["num_calls"])
        return out

    def _check(self, text, terminated, example):
        raise NotImplementedError("tool_multiplication reads (tokens, source); use host_reward")


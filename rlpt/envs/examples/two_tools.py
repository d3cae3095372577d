"""A two-tool environment from plain Python functions (rlpt.envs.tools): `multiply` and `add`,
for questions "What is a * b + c?" with 2-3 digit numbers (hard to do in one's head, two calls
with the tools). Rubric: `correct` (the final answer's last number equals a*b+c) plus 0.2 x
`used_tools` (1 when the episode made at least one call that returned a result). Demonstration:
the two calls and the answer (an SFT warm-up's gold episodes)."""
import json
import re

import numpy as np

from rlpt.envs.parsers import last_assistant_text
from rlpt.envs.rubric import Rubric
from rlpt.envs.tools import tool_environment


def multiply(a: int, b: int) -> int:
    """Multiplies two integers.

    Args:
        a: the first factor.
        b: the second factor.
    """
    return int(a) * int(b)


def add(a: int, b: int) -> int:
    """Adds two integers.

    Args:
        a: the first addend.
        b: the second addend.
    """
    return int(a) + int(b)


def final_number(completion):
    """The last whole number of the final assistant message (None without one)."""
    found = re.findall(r"-?\d+", last_assistant_text(completion).replace(",", ""))
    return int(found[-1]) if found else None


def _call(name, a, b):
    return ("<tool_call>\n" + json.dumps({"name": name, "arguments": {"a": a, "b": b}})
            + "\n</tool_call>")


QUESTION = "What is {} * {} + {}? Use the tools, then give the answer."
# a worked episode (two calls, then the answer) as chat turns before the question
EXAMPLE = [{"role": "user", "content": QUESTION.format(21, 43, 5)},
           {"role": "assistant", "content": _call("multiply", 21, 43)},
           {"role": "tool", "content": "903"},
           {"role": "assistant", "content": _call("add", 903, 5)},
           {"role": "tool", "content": "908"},
           {"role": "assistant", "content": "The answer is 908."}]


def load_environment(n_rows: int = 600, max_turns: int = 4, seed: int = 0,
                     example: bool = False):
    """`example`: the prompt starts with a worked episode (`EXAMPLE`, as chat turns)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_rows):
        a, b, c = (int(x) for x in rng.integers(12, 999, size=3))
        question = {"role": "user", "content": QUESTION.format(a, b, c)}
        rows.append({"prompt": (EXAMPLE if example else []) + [question],
                     "answer": str(a * b + c), "info": {"a": a, "b": b, "c": c}})

    def correct(completion, answer):
        return float(final_number(completion) == int(answer))

    def used_tools(state):
        return float(state.get("tool_calls", 0) > state.get("tool_errors", 0))

    def two_calls(row):
        """The demonstration: multiply, add, then the answer (EXAMPLE's shape)."""
        a, b, c = (row["info"][k] for k in "abc")
        return [{"role": "assistant", "content": _call("multiply", a, b)},
                {"role": "tool", "content": str(a * b)},
                {"role": "assistant", "content": _call("add", a * b, c)},
                {"role": "tool", "content": str(a * b + c)},
                {"role": "assistant", "content": f"The answer is {a * b + c}."}]

    return tool_environment(rows, tools=[multiply, add],
                            rubric=Rubric([correct, used_tools], [1.0, 0.2]),
                            max_turns=max_turns, name="two_tools", demonstration=two_calls)

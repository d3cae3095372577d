"""A two-tool environment from plain Python functions (rlpt.envs.tools): `multiply` and `add`,
for questions "What is a * b + c?" with 2-3 digit numbers (hard to do in one's head, two calls
with the tools). Rubric: `correct` (the final answer's last number equals a*b+c) plus 0.2 x
`used_tools` (1 when the episode made at least one call that returned a result)."""
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


EXAMPLE = ("Example.\nUser: What is 21 * 43 + 5? Use the tools, then give the answer.\n"
           "Assistant: <tool_call>\n{\"name\": \"multiply\", \"arguments\": {\"a\": 21, "
           "\"b\": 43}}\n</tool_call>\nTool: 903\nAssistant: <tool_call>\n{\"name\": \"add\", "
           "\"arguments\": {\"a\": 903, \"b\": 5}}\n</tool_call>\nTool: 908\n"
           "Assistant: The answer is 908.")


def load_environment(n_rows: int = 600, max_turns: int = 4, seed: int = 0,
                     example: bool = False):
    """`example`: a worked episode (two calls, then the answer) in the system message."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_rows):
        a, b, c = (int(x) for x in rng.integers(12, 999, size=3))
        rows.append({"prompt": f"What is {a} * {b} + {c}? Use the tools, then give the answer.",
                     "answer": str(a * b + c)})

    def correct(completion, answer):
        return float(final_number(completion) == int(answer))

    def used_tools(state):
        return float(state.get("tool_calls", 0) > state.get("tool_errors", 0))

    return tool_environment(rows, tools=[multiply, add],
                            rubric=Rubric([correct, used_tools], [1.0, 0.2]),
                            max_turns=max_turns, system_prompt=EXAMPLE if example else "",
                            name="two_tools")

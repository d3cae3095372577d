"""The calculator game as one `Environment` with two implementations of its protocol.

The game (tool_multiplication, rlpt.tasks.tool_task): the prompt is `123*45=`; the policy may
call the calculator by writing `[expr]`, the environment answers `<value>` (or `<?>` for a
malformed call, rlpt.envs.calculator), at most `max_calls` times; the answer is what the policy
writes after the last result, up to eos.

- **Python** (`env_response`, played by rlpt.envs.multiturn.EnvRunner with `PlainChat`): a
  policy turn ends at `]` or eos (the runner's stop tokens); a turn that ends at `]` with a call
  open (its first `[`) gets the call's body evaluated by the calculator's Python reference
  (`reference_eval`, no `eval`) and the result as a `tool` message; a turn that ends at eos is
  the answer and ends the episode. `max_turns = max_calls + 1`.
- **compiled** (`compiled`, an `rlpt.sampling.Rollout`): the same calculator inside the decode
  loop (rlpt.envs.tool_rollout), one program for the whole rollout, evaluated in JAX. The
  trainer plays this one (`rollout.kind="tool"`, build_rl reads `compiled` from the task's
  `calculator_environment`).

Both answer a call with the same tokens and score an episode the same (the rubric's `correct`
here, `tool_answer_reward`'s `correct` on device): tests/test_tool_rollout.py checks
it episode by episode on sampled rollouts. Where they differ: the Python policy turn stops at
every `]`, so a `]` that closes no call, or a call after the limit, ends the episode there,
while the compiled policy writes on (that `]` is an ordinary token; the late call is counted in
`unanswered_calls`).
"""
from typing import Dict, List

from rlpt.envs.calculator import reference_eval, reference_render
from rlpt.envs.environment import Environment
from rlpt.envs.rubric import Rubric
from rlpt.envs.tool_rollout import ToolConfig, tool_rollout


def calculator_response(max_call_len: int):
    """`env_response` of the Python implementation (module doc)."""
    def env_response(state, messages):
        text = messages[-1]["content"]
        opened = text.find("[")
        if not text.endswith("]") or opened < 0:
            return [], True   # the answer (or a `]` that closes no call): done
        value, _ = reference_eval(text[opened + 1:-1], max_call_len)
        return [{"role": "tool", "content": reference_render(value)}], False
    return env_response


def correct(completion, answer, state) -> float:
    """1 when the last policy turn ended at a stop token (`state["stopped"]`; a turn of digits
    only cannot have stopped at `]`, so at eos) and is exactly the answer's digits: the text
    after the last result, as `tool_answer_reward` reads it on device."""
    texts = [m["content"] for m in completion if m["role"] == "assistant"]
    return float(bool(texts) and state.get("stopped", False) and texts[-1] == answer)


def calculator_environment(rows: List[Dict], tcfg: ToolConfig = ToolConfig()) -> Environment:
    """`rows`: `{"prompt": "123*45=", "answer": "5535"}`; both implementations (module doc)."""
    return Environment(dataset=rows, rubric=Rubric([correct]),
                       env_response=calculator_response(tcfg.max_call_len),
                       max_turns=tcfg.max_calls + 1, name="calculator",
                       compiled=tool_rollout(tcfg))

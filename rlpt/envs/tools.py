"""Tool environments from plain Python functions, in the Hermes / Qwen2.5 tool-call format.

    def add(a: int, b: int) -> int:
        \"\"\"Adds two integers.

        Args:
            a: the first addend.
            b: the second addend.
        \"\"\"
        return a + b

    env = tool_environment(dataset, tools=[add, multiply], rubric=Rubric([correct]))

- **Schemas**: `tool_schema(fn)` is the OpenAI / HF function schema built from the signature
  (annotations int, float, str, bool, list, dict -> JSON types; parameters without a default
  are required) and the Google-style docstring (its first paragraph, and `Args:` lines).
- **Calls**: the model writes `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (one
  or more per turn); each is parsed with `json.loads` only (model text is never evaluated as
  code), checked against the tool's parameters, and run; its result (`str(result)`) comes back
  as a `{"role": "tool"}` message. A malformed call (not JSON, no name, unknown tool, wrong
  arguments) or a tool that raises comes back as an `Error: ...` tool message the model can
  read, counted in the episode's `state["tool_errors"]`; it never raises into the trainer.
- **Episodes**: a policy turn without a tool call is the final answer (the episode ends);
  otherwise the tool messages are appended and the policy continues, for at most `max_turns`
  policy turns.
- **Prompting**: the chat template renders the tools when it supports them (a template that
  reads `tools`, as Qwen2.5's does); otherwise (SmolLM2's) `rlpt.envs.environment.Chat` adds
  `hermes_system_prompt(schemas)` to the system message, the same instructions Qwen2.5's
  template writes.

Two weight-0 rubric functions are appended for the logs: `tool_calls` and `tool_errors` per
episode (rubric/tool_calls, rubric/tool_errors).
"""
import inspect
import json
import re
from typing import Callable, Dict, List, Sequence, Tuple

from rlpt.envs.environment import Environment
from rlpt.envs.parsers import last_assistant_text
from rlpt.envs.rubric import RewardFunc, Rubric

JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array",
              dict: "object"}
TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def _docstring_parts(fn) -> Tuple[str, Dict[str, str]]:
    """(description, {arg: description}) from a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    desc = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    args, in_args = {}, False
    for line in doc.splitlines():
        s = line.strip()
        if s in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
        elif in_args:
            m = re.match(r"(\w+)\s*(?:\([^)]*\))?:\s*(.*)", s)
            if m:
                args[m.group(1)] = m.group(2)
            else:   # a blank line or the next section ends the arguments
                in_args = False
    return desc, args


def tool_schema(fn: Callable) -> Dict:
    """The function schema of `fn` (module doc)."""
    desc, arg_docs = _docstring_parts(fn)
    props, required = {}, []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"tool {fn.__name__}: *args / **kwargs cannot be described as JSON")
        prop = {"type": JSON_TYPES.get(p.annotation, "string")}
        if p.name in arg_docs:
            prop["description"] = arg_docs[p.name]
        props[p.name] = prop
        if p.default is p.empty:
            required.append(p.name)
    return {"type": "function", "function": {
        "name": fn.__name__, "description": desc,
        "parameters": {"type": "object", "properties": props, "required": required}}}


def hermes_system_prompt(schemas: Sequence[Dict], system: str = "") -> str:
    """The tool instructions of the Hermes format (as Qwen2.5's chat template writes them)."""
    lines = "\n".join(json.dumps(s) for s in schemas)
    return ((system + "\n\n" if system else "") + "# Tools\n\nYou may call one or more functions "
            "to assist with the user query.\n\nYou are provided with function signatures "
            f"within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\nFor each function "
            "call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
            "\"arguments\": <args-json-object>}\n</tool_call>")


def parse_tool_calls(text: str) -> List:
    """Every `<tool_call>` block of `text`: a `(name, arguments)` pair, or an error string."""
    calls = []
    for body in TOOL_CALL.findall(text):
        try:
            call = json.loads(body)
        except ValueError as e:
            calls.append(f"Error: the tool call is not valid JSON ({e})")
            continue
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            calls.append("Error: a tool call needs a \"name\" and \"arguments\"")
            continue
        args = call.get("arguments", {})
        if isinstance(args, str):   # some models write the arguments as a JSON string
            try:
                args = json.loads(args)
            except ValueError:
                pass
        if not isinstance(args, dict):
            calls.append(f"Error: the arguments of {call['name']} must be a JSON object")
            continue
        calls.append((call["name"], args))
    return calls


def run_call(tools: Dict[str, Callable], call) -> Tuple[str, bool]:
    """(the tool message's text, whether it is an error)."""
    if isinstance(call, str):
        return call, True
    name, args = call
    if name not in tools:
        return f"Error: unknown tool {name!r}; available: {sorted(tools)}", True
    try:
        inspect.signature(tools[name]).bind(**args)
    except TypeError as e:
        return f"Error: wrong arguments for {name}: {e}", True
    try:
        return str(tools[name](**args)), False
    except Exception as e:   # a tool's failure is the model's to read, not the trainer's
        return f"Error: {name} raised {type(e).__name__}: {e}", True


def tool_environment(dataset, tools: Sequence[Callable], rubric: Rubric, max_turns: int = 4,
                     system_prompt: str = "", name: str = "tools",
                     demonstration: Callable = None) -> Environment:
    """An Environment whose protocol runs the model's tool calls (module doc)."""
    by_name = {f.__name__: f for f in tools}
    schemas = [tool_schema(f) for f in tools]

    def env_response(state, messages):
        calls = parse_tool_calls(last_assistant_text(messages))
        if not calls:
            return [], True   # no call: the final answer
        out = []
        for call in calls:
            text, bad = run_call(by_name, call)
            state["tool_calls"] = state.get("tool_calls", 0) + 1
            state["tool_errors"] = state.get("tool_errors", 0) + int(bad)
            out.append({"role": "tool", "content": text})
        return out, False

    def tool_calls(state):
        return state.get("tool_calls", 0)

    def tool_errors(state):
        return state.get("tool_errors", 0)

    logged = Rubric(list(rubric.funcs) + [RewardFunc(tool_calls, weight=0.0),
                                          RewardFunc(tool_errors, weight=0.0)])
    return Environment(dataset=dataset, rubric=logged, env_response=env_response,
                       system_prompt=system_prompt or None, max_turns=max_turns, tools=schemas,
                       name=name, demonstration=demonstration)

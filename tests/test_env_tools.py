"""Tool environments from plain Python functions (rlpt.envs.tools): schemas from signatures and
docstrings, Hermes tool calls parsed as JSON only, every bad call an error message to the model,
and the SmolLM2 chat template rendering the tools and the tool replies."""
import os

import pytest

from conftest import SHARED_DATA
from rlpt.envs.environment import Chat
from rlpt.envs.examples.two_tools import add, load_environment, multiply
from rlpt.envs.tools import parse_tool_calls, run_call, tool_schema

GGUF = os.path.join(SHARED_DATA, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def call(name, args):
    import json
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def test_schema_from_signature_and_docstring():
    def lookup(city: str, year: int = 2020, exact: bool = False) -> float:
        """Looks up a city's population.

        Args:
            city: the city's name.
            year (int): the census year.

        Returns:
            the population.
        """
    s = tool_schema(lookup)["function"]
    assert s["name"] == "lookup" and s["description"] == "Looks up a city's population."
    assert s["parameters"]["required"] == ["city"]
    assert s["parameters"]["properties"] == {
        "city": {"type": "string", "description": "the city's name."},
        "year": {"type": "integer", "description": "the census year."},
        "exact": {"type": "boolean"}}
    with pytest.raises(ValueError, match="kwargs"):
        tool_schema(lambda **kw: 0)


def test_calls_and_every_bad_call_become_tool_messages():
    tools = {"add": add, "multiply": multiply}

    def boom(x: int) -> int:
        raise ZeroDivisionError("no")
    tools["boom"] = boom
    text = (call("multiply", {"a": 12, "b": 34}) + "<tool_call>{not json}</tool_call>"
            + call("divide", {"a": 1}) + call("add", {"a": 1}) + call("boom", {"x": 1})
            + '<tool_call>{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}</tool_call>'
            + "<tool_call>[1, 2]</tool_call>" + "__import__('os').system('echo hacked')")
    results = [run_call(tools, c) for c in parse_tool_calls(text)]
    assert results[0] == ("408", False)
    assert results[1][1] and "not valid JSON" in results[1][0]
    assert results[2][1] and "unknown tool 'divide'" in results[2][0]
    assert results[3][1] and "wrong arguments for add" in results[3][0]
    assert results[4] == ("Error: boom raised ZeroDivisionError: no", True)
    assert results[5] == ("5", False)              # arguments given as a JSON string
    assert results[6][1] and "needs a \"name\"" in results[6][0]
    assert len(results) == 7                        # text outside <tool_call> is never run


def test_tool_environment_protocol_and_logged_counts():
    env = load_environment(n_rows=4)
    row = env.dataset[0]
    state = env.initial_state(row)
    msgs, done = env.env_response(state, [{"role": "assistant", "content":
                                           call("multiply", {"a": 3, "b": 4}) +
                                           call("nope", {})}])
    assert not done and msgs == [{"role": "tool", "content": "12"},
                                 {"role": "tool", "content": msgs[1]["content"]}]
    assert msgs[1]["content"].startswith("Error: unknown tool") and state["tool_errors"] == 1
    msgs, done = env.env_response(state, [{"role": "assistant", "content": f"{row['answer']}"}])
    assert done and msgs == []
    r, m = env.rubric.score([{"prompt": [], "completion": [{"role": "assistant",
                                                             "content": f"It is {row['answer']}."}],
                              "answer": row["answer"], "state": state, "info": {}}], 1)
    assert r[0] == pytest.approx(1.2) and m["rubric/tool_calls"] == 2
    assert m["rubric/tool_errors"] == 1


@pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")
def test_smollm2_template_gets_the_tools_and_the_tool_replies():
    from rlpt.tokenizers import load_tokenizer
    chat = Chat(load_tokenizer(GGUF))
    env = load_environment(n_rows=2)
    prompt = chat.render(env.prompt_messages(env.dataset[0]), True, env.tools)
    assert prompt.startswith("<|im_start|>system\n# Tools") and '"name": "multiply"' in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    history = env.prompt_messages(env.dataset[0]) + [
        {"role": "assistant", "content": call("add", {"a": 1, "b": 2})}]
    ids = chat.reply_ids(history, [{"role": "tool", "content": "3"}], True, env.tools)
    assert chat.tok.decode(ids, stop_at_eos=False) == "\ntool\n3\nassistant\n"  # specials dropped
    assert chat.tok.encode("\n<|im_start|>tool\n3<|im_end|>\n<|im_start|>assistant\n") == ids

"""A `verifiers` (PyPI, 0.4.0: `pip install rlpt[verifiers]`) taskset as an rlpt environment:
its dataset, its tools and its reward functions inside rlpt's trainer.

    env = from_verifiers(MyTaskset(MyConfig()), max_turns=4)

What is used from verifiers, and how (verifiers 0.4 is the `verifiers.v1` stack: a `Taskset`
yields `Task`s; a task's rewards are its `@vf.reward` methods and plugged reward functions;
tools are `vf.Toolset`s, MCP tool servers):

- **dataset**: each task's system prompt and prompt messages, and its `answer` when it has one;
- **tools**: every task's toolsets, set up in this process (`Toolset.setup`, `setup_task`) and
  registered on an in-process MCP server; their schemas are the environment's tools (rendered
  by the chat template or as Hermes instructions, rlpt.envs.tools) and the model's
  `<tool_call>` blocks are run through that server. A call verifiers rejects comes back as its
  error text, a malformed one as rlpt's (rlpt.envs.tools.parse_tool_calls);
- **reward**: the task's own `Task.score(trace)`, its weighted total `trace.reward`, on a trace
  rebuilt from rlpt's episode: each policy turn one model turn, its `<tool_call>` blocks as
  OpenAI `tool_calls`, the tool replies as `tool` messages with their call ids. A scoring that
  raises scores 0 and is counted (rlpt's rubric guard; verifiers fails the whole score when one
  of its rewards raises).

Not used: verifiers' own rollout loop (`Env`, `Rollout`, harnesses). It generates through an
OpenAI-compatible HTTP endpoint behind an interception server, runs the harness and the tool
servers as subprocesses (set up with `uv`) and defaults to a remote sandbox runtime; rlpt
generates on device instead. Rewards that need a runtime (`requires_runtime`) are skipped by
`Task.score` without one, and LLM judges need an endpoint: neither runs here. The bridge reads
semi-internal functions of verifiers 0.4.0 (`verifiers.v1.graph.prepare_turn`,
`verifiers.v1.dialects.chat`), hence the exact pin.
"""
import asyncio
import json
from typing import Dict, List

from rlpt.envs.environment import Environment
from rlpt.envs.parsers import last_assistant_text
from rlpt.envs.rubric import RewardFunc, Rubric
from rlpt.envs.tools import TOOL_CALL, parse_tool_calls
from rlpt.errors import UserError


def _vf():
    try:
        import verifiers.v1 as vf
    except ImportError:
        raise UserError("rlpt.envs.verifiers_env needs verifiers 0.4.0: "
                        "pip install 'rlpt[verifiers]'") from None
    return vf


def _content(m) -> str:
    c = m.content
    return c if isinstance(c, str) else "".join(getattr(p, "text", "") for p in c or [])


def task_messages(task) -> List[Dict]:
    """The task's prompt as chat messages (its system prompt first)."""
    d = task.data
    msgs = [{"role": "system", "content": d.system_prompt}] if d.system_prompt else []
    if isinstance(d.prompt, str):
        return msgs + [{"role": "user", "content": d.prompt}]
    from verifiers.v1.dialects.chat import message_to_wire
    for m in d.prompt or []:
        w = message_to_wire(m)
        msgs.append({"role": w["role"], "content": _content(m) if not isinstance(
            w.get("content"), str) else w["content"]})
    return msgs


async def _tool_servers(task):
    """(schemas, {name: (server, tool name)}) of the task's toolsets, served in this process."""
    from mcp.server.mcpserver import MCPServer
    schemas, dispatch = [], {}
    for ts in task.toolsets(task.config):
        await ts.setup()
        await ts.setup_task(task)
        server = MCPServer(ts.server_name or type(ts).__name__)
        ts.register(server)
        for t in await server.list_tools():
            name = f"{ts.server_name}_{t.name}" if ts.server_name else t.name
            schemas.append({"type": "function", "function": {
                "name": name, "description": t.description or "",
                "parameters": t.input_schema}})
            dispatch[name] = (server, t.name)
    return schemas, dispatch


async def _call(dispatch, name, args) -> str:
    from verifiers.v1.harnesses.utils.mcp import mcp_content_to_chat_content
    if name not in dispatch:
        return f"Error: unknown tool {name!r}; available: {sorted(dispatch)}"
    server, raw = dispatch[name]
    try:
        res = await server.call_tool(raw, args)
        return str(mcp_content_to_chat_content(res.content))
    except Exception as e:   # the tool's error is the model's to read
        return f"Error: {name}: {type(e).__name__}: {e}"


def wire_completion(completion: List[Dict]) -> List[Dict]:
    """rlpt's episode messages in the OpenAI wire format verifiers scores: `<tool_call>` blocks
    of an assistant turn become its `tool_calls` (ids `call_<turn>_<k>`, malformed ones
    dropped), the tool replies that follow get those ids in order."""
    out, pending = [], []
    for t, m in enumerate(completion):
        if m["role"] == "assistant":
            calls = [c for c in parse_tool_calls(m["content"]) if not isinstance(c, str)]
            text = TOOL_CALL.sub("", m["content"]).strip()
            msg = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = [{"id": f"call_{t}_{k}", "type": "function",
                                      "function": {"name": n, "arguments": json.dumps(a)}}
                                     for k, (n, a) in enumerate(calls)]
            pending = [(c["id"], c["function"]["name"]) for c in msg.get("tool_calls", [])]
            out.append(msg)
        elif m["role"] == "tool":
            cid, name = pending.pop(0) if pending else (f"call_{t}_x", "unknown")
            out.append({"role": "tool", "tool_call_id": cid, "name": name,
                        "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


async def score_task(task, prompt: List[Dict], completion: List[Dict], schemas) -> float:
    """`Task.score` on a trace rebuilt from the episode (module doc): -> trace.reward."""
    vf = _vf()
    from verifiers.v1.dialects.chat import parse_message, parse_tools
    from verifiers.v1.graph import prepare_turn
    from verifiers.v1.state import state_cls
    trace = vf.Trace(task=vf.TraceTask(type=type(task).__name__, data=task.data, key=task.key,
                                       hash=task.hash),
                     state=state_cls(type(task))(),
                     agent=vf.AgentInfo(config=vf.AgentConfig(runtime=vf.SubprocessConfig())))
    tools = parse_tools(schemas) or []
    history = [parse_message(m) for m in prompt]
    for i, raw in enumerate(wire_completion(completion)):
        m = parse_message(raw)
        if m.role == "assistant":
            prepare_turn(trace, history, tools).commit(vf.Response(
                id=str(i), created=0, model="rlpt", message=m,
                finish_reason="tool_calls" if m.tool_calls else "stop"))
        history.append(m)
    await task.score(trace)
    return float(trace.reward or 0.0)


def from_verifiers(taskset, max_turns: int = 4, name: str = "") -> Environment:
    """The Environment of a verifiers Taskset (module doc): single-turn when its tasks have no
    tools, else a tool protocol of at most `max_turns` policy turns (a turn without a tool call
    is the final answer)."""
    _vf()
    tasks = list(taskset)
    if not tasks:
        raise UserError(f"verifiers taskset {type(taskset).__name__} has no tasks")
    servers = [asyncio.run(_tool_servers(t)) for t in tasks]
    schemas = servers[0][0]
    rows = []
    for i, t in enumerate(tasks):
        answer = getattr(t.data, "answer", None)
        rows.append({"prompt": task_messages(t), "answer": answer, "info": {"task": i}})

    def env_response(state, messages):
        calls = parse_tool_calls(last_assistant_text(messages))
        if not calls:
            return [], True
        dispatch = servers[state["info"]["task"]][1]
        out = []
        for c in calls:
            text = c if isinstance(c, str) else asyncio.run(_call(dispatch, *c))
            state["tool_calls"] = state.get("tool_calls", 0) + 1
            out.append({"role": "tool", "content": text})
        return out, False

    def verifiers_reward(prompt, completion, info):
        i = info["task"]
        return asyncio.run(score_task(tasks[i], prompt, completion, servers[i][0]))

    return Environment(dataset=rows, rubric=Rubric([RewardFunc(verifiers_reward)]),
                       env_response=env_response if schemas else None,
                       max_turns=max_turns if schemas else 1, tools=schemas,
                       name=name or f"verifiers/{type(taskset).__name__}")

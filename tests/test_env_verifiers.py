"""A `verifiers` 0.4.0 taskset inside rlpt (rlpt.envs.verifiers_env): environments built here
from verifiers' own classes (Taskset, Task, @vf.reward, Toolset, @vf.tool); their prompts, tools
and rewards through rlpt's Environment, and one RL step through rlpt's trainer machinery."""
import os

import jax
import numpy as np
import pytest

vf = pytest.importorskip("verifiers.v1", reason="the verifiers extra (pip install rlpt[verifiers])")

from conftest import SHARED_DATA  # noqa: E402
from rlpt.envs.verifiers_env import from_verifiers, wire_completion  # noqa: E402

GGUF = os.path.join(SHARED_DATA, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


class QAData(vf.TaskData):
    answer: str


class QATask(vf.Task[QAData]):
    @vf.reward(weight=1.0)
    async def correct(self, trace: vf.Trace) -> float:
        return float(self.data.answer in (trace.last_reply or ""))

    @vf.reward(weight=0.25)
    async def short(self, trace: vf.Trace) -> float:
        return float(len(trace.last_reply or "") < 20)


class QAConfig(vf.TasksetConfig):
    id: str = "rlpt-test-qa"


class QATaskset(vf.Taskset[QATask, QAConfig]):
    def load(self):
        for q, a in [("What is 2+2?", "4"), ("Capital of France?", "Paris"), ("3*7?", "21")]:
            yield QATask(QAData(prompt=[vf.UserMessage(content=q)], answer=a,
                                system_prompt="Answer briefly."), self.config.task)


class CalcToolset(vf.Toolset[vf.ToolsetConfig]):
    TOOL_PREFIX = "calc"

    @vf.tool
    def multiply(self, a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b


class CalcTaskConfig(vf.TaskConfig):
    tools: vf.ToolsetConfig = vf.ToolsetConfig()


class CalcData(vf.TaskData):
    answer: str


class CalcTask(vf.Task[CalcData, vf.State, CalcTaskConfig]):
    @classmethod
    def toolsets(cls, config):
        return [CalcToolset(config.tools)]

    @vf.reward(weight=1.0)
    async def correct(self, trace: vf.Trace) -> float:
        return float(self.data.answer in (trace.last_reply or ""))

    @vf.reward(weight=0.5)
    async def used_tool(self, trace: vf.Trace) -> float:
        return float(len(trace.tool_messages) > 0)


class CalcConfig(vf.TasksetConfig):
    id: str = "rlpt-test-calc"
    task: CalcTaskConfig = CalcTaskConfig()


class CalcTaskset(vf.Taskset[CalcTask, CalcConfig]):
    def load(self):
        for a, b in [(123, 45), (67, 89)]:
            yield CalcTask(CalcData(prompt=f"What is {a}*{b}? Use the tool.",
                                    answer=str(a * b)), self.config.task)


def episode(env, i, completion):
    row = env.dataset[i]
    return {"prompt": env.prompt_messages(row), "completion": completion,
            "answer": row["answer"], "state": env.initial_state(row), "info": row["info"]}


def test_single_turn_taskset_rows_and_rewards():
    env = from_verifiers(QATaskset(QAConfig()))
    assert env.max_turns == 1 and env.env_response is None and not env.tools
    assert env.prompt_messages(env.dataset[0]) == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2+2?"}]
    eps = [episode(env, 0, [{"role": "assistant", "content": "It is 4."}]),
           episode(env, 1, [{"role": "assistant", "content": "I think it is Lyon, in France."}]),
           episode(env, 2, [{"role": "assistant", "content": "21"}])]
    r, m = env.rubric.score(eps, 1)
    np.testing.assert_allclose(r, [1.25, 0.0, 1.25])     # verifiers' own weighted total
    assert m["rubric/verifiers_reward_errors"] == 0


def test_tool_taskset_runs_its_tools_and_scores_the_trace():
    env = from_verifiers(CalcTaskset(CalcConfig()), max_turns=3)
    assert [t["function"]["name"] for t in env.tools] == ["calc_multiply"]
    state = env.initial_state(env.dataset[0])
    call = ('<tool_call>{"name": "calc_multiply", "arguments": {"a": 123, "b": 45}}'
            '</tool_call>')
    msgs, done = env.env_response(state, [{"role": "assistant", "content": call}])
    assert not done and msgs == [{"role": "tool", "content": "5535"}]
    bad, _ = env.env_response(state, [{"role": "assistant", "content":
                                       '<tool_call>{"name": "calc_divide", "arguments": {}}'
                                       '</tool_call><tool_call>{oops}</tool_call>'}])
    assert "unknown tool 'calc_divide'" in bad[0]["content"]
    assert "not valid JSON" in bad[1]["content"]
    _, done = env.env_response(state, [{"role": "assistant", "content": "5535"}])
    assert done
    completion = [{"role": "assistant", "content": call}, msgs[0],
                  {"role": "assistant", "content": "The answer is 5535."}]
    wire = wire_completion(completion)
    assert wire[0]["tool_calls"][0]["function"]["name"] == "calc_multiply"
    assert wire[1]["tool_call_id"] == wire[0]["tool_calls"][0]["id"]
    r, _ = env.rubric.score([episode(env, 0, completion),
                             episode(env, 0, [{"role": "assistant", "content": "5535"}]),
                             episode(env, 1, [{"role": "assistant", "content": "no idea"}])], 1)
    np.testing.assert_allclose(r, [1.5, 1.0, 0.0])


@pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")
@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_a_verifiers_tool_taskset_trains_one_step():
    """The environment through rlpt's env step: a tiny random model over SmolLM2's template."""
    from rlpt.build import build_model, build_rl
    from rlpt.config import validate
    from rlpt.env_step import make_env_step
    from rlpt.envs.environment import Chat, prompt_batch
    from rlpt.envs.multiturn import EnvRunner
    from rlpt.tokenizers import load_tokenizer
    from configs.env_games import get_config
    env = from_verifiers(CalcTaskset(CalcConfig()), max_turns=2)
    cfg = validate(get_config("game=guess_number,quick=1,preset=tiny,lora=0"))
    chat = Chat(load_tokenizer(GGUF))

    class Task:   # build_rl reads make_batch and marks an environment by this attribute
        environment = env
        def make_batch(self, seed, step, n):
            return prompt_batch(env, chat, [0, 1][:n], 320, chat.tok.pad_id)
    model_cfg, params = build_model(cfg)
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, Task())
    runner = EnvRunner(env, chat, spec.model_cfg, spec.scfg, 10, 32)
    step = make_env_step(spec, runner)
    state, m = step(state, make_batch(0), hp)
    assert "rubric/verifiers_reward" in m and m["rubric/verifiers_reward_errors"] == 0
    assert np.isfinite(float(jax.device_get(m["loss"])))

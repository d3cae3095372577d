"""Any `reasoning-gym` procedural dataset (PyPI `reasoning-gym`, 0.1.x; `pip install
rlpt[envs]`) as a single-turn rlpt environment, with the dataset's own `score_answer` as the
reward.

    c.task.name = "env"
    c.task.kwargs = dict(env="rlpt.envs.reasoning_gym:load_environment",
                         env_kwargs=dict(dataset="chain_sum", size=2000, seed=0,
                                         dataset_kwargs=dict(min_terms=2, max_terms=3)), ...)

Rows: `reasoning_gym.create_dataset(dataset, size=size, seed=seed, **dataset_kwargs)`, the
question as the user message, one of reasoning-gym's system prompts (`system`: "default",
"simple", "direct", "DeepSeekZero", "chain_of_draft"; the ones that ask for the answer in
`<answer>` tags). Rubric:

- `score_answer`: the dataset's `score_answer(answer, entry)` (1 right, partial credit where
  the dataset gives it, 0 otherwise) on the answer inside the LAST `<answer>...</answer>` pair
  (`rlpt.envs.parsers.XMLParser(("answer",))`; no tag: the answer is None and scores 0, as in
  reasoning-gym's own evaluation);
- `format` (weight `format_weight`, default 0): the parser's format reward, 1 when the answer
  tag pair is there exactly once.
"""
from rlpt.envs.environment import Environment
from rlpt.envs.parsers import XMLParser
from rlpt.envs.rubric import Rubric, RewardFunc
from rlpt.errors import UserError


def load_environment(dataset: str = "chain_sum", size: int = 1000, seed: int = 0,
                     dataset_kwargs: dict = None, system: str = "direct",
                     format_weight: float = 0.0) -> Environment:
    try:
        import reasoning_gym
        from reasoning_gym.utils import SYSTEM_PROMPTS
    except ImportError:
        raise UserError("task.kwargs.env names rlpt.envs.reasoning_gym, which needs the "
                        "reasoning-gym package: pip install 'rlpt[envs]'") from None
    if system not in SYSTEM_PROMPTS:
        raise UserError(f"config task.kwargs.env_kwargs.system={system!r}; reasoning-gym's "
                        f"system prompts: {sorted(SYSTEM_PROMPTS)}")
    try:
        data = reasoning_gym.create_dataset(dataset, size=size, seed=seed,
                                            **dict(dataset_kwargs or {}))
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise UserError(f"config task.kwargs.env_kwargs: reasoning-gym dataset {dataset!r}: "
                        f"{type(e).__name__}: {e}") from None
    rows = [{"prompt": entry["question"], "answer": entry["answer"], "info": {"index": i}}
            for i, entry in enumerate(data)]
    parser = XMLParser(("answer",))

    def score_answer(completion, info):
        return float(data.score_answer(parser.parse_answer(completion), data[info["index"]]))

    funcs = [RewardFunc(score_answer)]
    if format_weight:
        funcs.append(RewardFunc(parser.format_reward, weight=format_weight, name="format"))
    return Environment(dataset=rows, rubric=Rubric(funcs), system_prompt=SYSTEM_PROMPTS[system],
                       name=f"reasoning_gym/{dataset}")

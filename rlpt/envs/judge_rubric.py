"""A judge reward function for rubrics: a frozen rlpt model reads each episode and answers yes or
no; the score is `p(yes) / (p(yes) + p(no))` at its next token (the generative-verifier score of
GenRM, arXiv 2408.15240; LLM-as-a-judge, arXiv 2306.05685).

    judge = judge_reward(model_cfg, params, Chat(tokenizer))
    rubric = Rubric([correct, judge], weights=[1.0, 0.5])

The judge's prompt is `template` filled with the episode's `question` (the last user message of
its prompt), `response` (the last assistant message) and `answer`, as one user message rendered
with the judge's chat template (`chat`: rlpt.envs.environment.Chat). It is a group function
(`RewardFunc(group=True)`): the G episodes of a prompt are judged in one batched forward, their
prompts left-padded to a multiple of 64 tokens (one compiled forward per width). The verdict
tokens are the first ids of `yes` and `no` as the tokenizer encodes them. The model is the
caller's: a checkpoint from `rlpt.models.load_checkpoint`, never trained here.
"""
import jax
import jax.numpy as jnp
import numpy as np

from rlpt.envs.parsers import last_assistant_text
from rlpt.envs.rubric import RewardFunc
from rlpt.models.transformer import forward

DEFAULT_TEMPLATE = ("Question: {question}\nResponse: {response}\n"
                    "Is the response a correct answer to the question? Answer Yes or No.")


def _question(prompt) -> str:
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def judge_reward(model_cfg, params, chat, template: str = DEFAULT_TEMPLATE, yes: str = "Yes",
                 no: str = "No", weight: float = 1.0, name: str = "judge") -> RewardFunc:
    """The judge as a rubric function (module doc)."""
    yes_id, no_id = chat.tok.encode(yes)[0], chat.tok.encode(no)[0]
    if yes_id == no_id:
        raise ValueError(f"judge: {yes!r} and {no!r} start with the same token")
    pad = chat.tok.pad_id

    @jax.jit
    def verdict(params, tokens, valid):
        last = forward(model_cfg, params, tokens, valid)[:, -1]
        lp = jax.nn.log_softmax(last.astype(jnp.float32), axis=-1)
        return jax.nn.sigmoid(lp[:, yes_id] - lp[:, no_id])   # p(yes) / (p(yes) + p(no))

    def judge(prompt, completion, answer):
        texts = [template.format(question=_question(p), response=last_assistant_text(c),
                                 answer=a) for p, c, a in zip(prompt, completion, answer)]
        ids = [chat.prompt_ids([{"role": "user", "content": t}]) for t in texts]
        width = -(-max(map(len, ids)) // 64) * 64
        tokens = np.full((len(ids), width), pad, np.int32)
        valid = np.zeros((len(ids), width), bool)
        for i, x in enumerate(ids):
            tokens[i, width - len(x):], valid[i, width - len(x):] = x, True
        return [float(v) for v in np.asarray(verdict(params, tokens, valid))]

    judge.__name__ = name
    return RewardFunc(judge, weight=weight, group=True, name=name)

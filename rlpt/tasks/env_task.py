"""A Python environment as an rlpt task: `task.name = "env"`.

    c.task.name = "env"
    c.task.kwargs = dict(env="rlpt.envs.examples.guess_number:load_environment",
                         env_kwargs=dict(n_rows=500), tokenizer_path=<the checkpoint>,
                         prompt_len=96, turn_tokens=32, max_reply=32, n_heldout=64)

`env` names a function `module:function` returning an `rlpt.envs.environment.Environment`
(the `verifiers` convention `load_environment(**env_kwargs)`); its prompts are rendered with the
checkpoint's chat template (`tokenizer_path`) and left-padded to `prompt_len`. The last
`n_heldout` dataset rows are the held-out evaluation set, the others are drawn for training with
`np.random.default_rng([seed, step])`.

rlpt.train trains it with `rlpt.envs.multiturn.make_env_step` (rollouts on the host between
device programs, the rubric in Python, the compiled update) and evaluates it with
`rlpt.envs.multiturn.evaluate_env`. There are no gold solutions, so no SFT warm-up (refused).
"""
import importlib

import numpy as np

from rlpt.envs.environment import Chat, Environment, prompt_batch
from rlpt.errors import UserError
from rlpt.registry import register
from rlpt.tokenizers import load_tokenizer


def load_environment(spec: str, kwargs: dict) -> Environment:
    """`module:function` called with `kwargs`; every failure names `task.kwargs.env`."""
    if ":" not in spec:
        raise UserError(f"config task.kwargs.env={spec!r}: expected 'module:function'")
    mod, fn = spec.split(":", 1)
    try:
        make = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise UserError(f"config task.kwargs.env={spec!r}: {type(e).__name__}: {e}") from None
    env = make(**kwargs)
    if not isinstance(env, Environment):
        raise UserError(f"config task.kwargs.env={spec!r} returned {type(env).__name__}, not an "
                        "rlpt.envs.environment.Environment")
    return env


@register("task", "env")
class EnvTask:
    name = "env"

    def __init__(self, env: str = "", env_kwargs: dict = None, tokenizer_path: str = "",
                 prompt_len: int = 128, turn_tokens: int = 64, max_reply: int = 64,
                 n_heldout: int = 64):
        if not env or not tokenizer_path:
            raise UserError("config task.kwargs: task 'env' needs env='module:function' and "
                            "tokenizer_path (the checkpoint's tokenizer)")
        self.environment = load_environment(env, dict(env_kwargs or {}))
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.chat = Chat(self.tokenizer)
        self.prompt_len, self.turn_tokens, self.max_reply = prompt_len, turn_tokens, max_reply
        n = len(self.environment.dataset)
        if not 0 < n_heldout < n:
            raise UserError(f"config task.kwargs.n_heldout={n_heldout}: the environment's "
                            f"dataset has {n} rows; hold out between 1 and {n - 1}")
        self.train_rows = np.arange(n - n_heldout)
        self.heldout_rows = np.arange(n - n_heldout, n)

    def _batch(self, rows):
        return prompt_batch(self.environment, self.chat, rows, self.prompt_len,
                            self.tokenizer.pad_id)

    def make_batch(self, seed: int, step: int, batch_size: int):
        rng = np.random.default_rng([seed, step])
        return self._batch(rng.choice(self.train_rows, size=batch_size,
                                      replace=len(self.train_rows) < batch_size))

    def eval_set(self, n: int):
        if n > len(self.heldout_rows):
            raise UserError(f"config eval.n_prompts={n} > task.kwargs.n_heldout="
                            f"{len(self.heldout_rows)}")
        return self._batch(self.heldout_rows[:n])

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
`rlpt.envs.multiturn.evaluate_env`. An SFT warm-up (`sft.steps`) needs the environment's
`demonstration` (gold completions): `sft_batch` teacher-forces them after the prompts, the loss on
the assistant turns only (`solution_loss_mask`), `solution_len` columns wide (default: room for
max_turns turns and the replies between them).
"""
import importlib

import numpy as np

from rlpt.envs.environment import Chat, Environment, demonstration_ids, prompt_batch
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
                 n_heldout: int = 64, solution_len: int = 0):
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
        turns = self.environment.max_turns
        self.solution_len = solution_len or turns * turn_tokens + (turns - 1) * max_reply

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

    def sft_batch(self, seed: int, step: int, batch_size: int):
        """The SFT warm-up's batch: training rows' prompts and their demonstrations
        (`solution`, `solution_mask` the demonstration's tokens, `solution_loss_mask` its
        assistant turns); a demonstration longer than `solution_len` is refused naming its row."""
        env = self.environment
        if env.demonstration is None:
            raise UserError(f"environment {env.name} has no demonstration (gold completions) to "
                            "warm up on; set --config.sft.steps=0")
        rng = np.random.default_rng([seed, step, 1])
        rows = rng.choice(self.train_rows, size=batch_size,
                          replace=len(self.train_rows) < batch_size)
        batch = self._batch(rows)
        W = self.solution_len
        sol = np.full((batch_size, W), self.tokenizer.pad_id, np.int32)
        valid, loss = np.zeros((batch_size, W), np.int32), np.zeros((batch_size, W), np.int32)
        for b, i in enumerate(rows):
            ids, mask = demonstration_ids(env, self.chat, env.dataset[int(i)])
            if len(ids) > W:
                raise UserError(f"environment {env.name}: the demonstration of dataset row "
                                f"{int(i)} is {len(ids)} tokens, more than task.kwargs."
                                f"solution_len={W}")
            sol[b, :len(ids)], valid[b, :len(ids)], loss[b, :len(ids)] = ids, 1, mask
        batch.update(solution=sol, solution_mask=valid, solution_loss_mask=loss)
        return batch

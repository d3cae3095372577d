"""GSM8K (arXiv 2110.14168) as an RL task: the synthetic tasks' batch contract over real rows.

    task = get("task", "gsm8k")(tokenizer_path=".../tokenizer.json", template="qwen2_chat")
    batch = task.make_batch(seed, step, B)

Data: the TFDS data sources of `rlpt.tasks.gsm8k_data.build_gsm8k` (prepared once under `data_dir`
from the jsonl files in `source_dir`, see that module for the lookup order). Prompts: each
question is filled into a named template (`rlpt.tasks.prompts.format_prompt`), tokenised with a
HF `tokenizer.json` (`rlpt.tokenizers.HFTokenizer`, the policy's own tokenizer) and left-padded
into length buckets (`rlpt.tasks.prompts.bucket_prompts`); questions longer than the largest
bucket are dropped at load time (their count is `num_dropped`).

Batch (numpy, deterministic in (seed, step) via `np.random.default_rng([seed, step])`):

    prompt        [B, W] int32  left-padded with the tokenizer's pad id; W = one of bucket_sizes
    prompt_mask   [B, W] int32
    target        [B, A] int32  the gold final answer's tokens (the text after `####`), right-
                                padded; A = answer_width
    target_len    [B]    int32
    solution      [B, S] int32  " " + the worked solution, then eos, truncated to S = solution_len
    solution_mask [B, S] int32

Each step draws one bucket (with probability proportional to its rows, so every question is
equally likely) and B rows of it, so a batch has one of `len(bucket_sizes)` static shapes (one
compilation each); with one bucket every batch has the same shape (needed for
`rl.iters_per_call > 1`, which stacks batches).

Reward: the host math verifier. `host_reward(tokens, mask, target, target_len)` decodes each
completion (model tokens up to the eos) and each gold answer to strings and returns
`rlpt.rewards.math_answer.gsm8k_reward(response, gold)`; `reward` is the same function behind
`rlpt.rewards.host_callback.host_reward_callback`, usable inside the jitted step (and by the
trainer's evaluation). `eval_set(n)` is the first n test questions that fit the largest bucket,
padded to the smallest bucket holding them all.
"""
import os
from typing import Dict, Sequence

import numpy as np

from rlpt.registry import register
from rlpt.tasks.decoded_answer import DecodedAnswerReward
from rlpt.tasks.prompts import bucket_prompts, format_prompt

EVAL_SEED = 10_000


@register("task", "gsm8k")
class Gsm8kTask(DecodedAnswerReward):
    name = "gsm8k"

    def __init__(self, tokenizer_path: str = "", template: str = "plain",
                 bucket_sizes: Sequence[int] = (256,), answer_width: int = 16,
                 solution_len: int = 320, data_dir: str = "", source_dir: str = "",
                 bos_token: str = "", eos_token: str = "", pad_token: str = "",
                 add_bos: bool = False, max_rows: int = 0):
        if not tokenizer_path:
            raise ValueError("task gsm8k: tokenizer_path (a HF tokenizer.json) is required")
        from rlpt.rewards.host_callback import host_reward_callback
        from rlpt.tasks.gsm8k_data import build_gsm8k, decode_row
        from rlpt.tokenizers import HFTokenizer

        self.tokenizer = HFTokenizer(tokenizer_path, bos_token or None, eos_token or None,
                                     pad_token or None)
        if self.tokenizer.eos_id is None:
            raise ValueError("task gsm8k: eos_token is required (completions end with it)")
        self.template, self.add_bos = template, add_bos
        self.bucket_sizes = tuple(int(b) for b in bucket_sizes)
        self.prompt_len, self.target_width, self.solution_len = (
            self.bucket_sizes[-1], int(answer_width), int(solution_len))
        data_dir = data_dir or os.path.expanduser("~/tensorflow_datasets")
        sources = build_gsm8k(data_dir, source_dir or None)
        self._sources, self._decode = sources, decode_row
        n = len(sources["train"]) if not max_rows else min(max_rows, len(sources["train"]))
        self.rows = [decode_row(sources["train"][i]) for i in range(n)]
        packed = bucket_prompts([self._prompt_text(r) for r in self.rows], self.tokenizer,
                                self.bucket_sizes, on_overflow="drop", add_bos=add_bos)
        self.buckets = [b for b in packed.buckets.values() if len(b.index)]
        self.num_dropped = packed.num_dropped
        if not self.buckets:
            raise ValueError(f"task gsm8k: no question fits bucket_sizes={self.bucket_sizes}")
        self.reward = host_reward_callback(self.host_reward)

    def _prompt_text(self, row) -> str:
        return format_prompt(row["question"], self.template)

    # -- batches ------------------------------------------------------------------------------
    def _fill(self, rows, prompt, prompt_mask) -> Dict[str, np.ndarray]:
        tok, b = self.tokenizer, len(rows)
        out = {"prompt": prompt.astype(np.int32), "prompt_mask": prompt_mask.astype(np.int32),
               "target": np.full((b, self.target_width), tok.pad_id, np.int32),
               "target_len": np.zeros((b,), np.int32),
               "solution": np.full((b, self.solution_len), tok.pad_id, np.int32),
               "solution_mask": np.zeros((b, self.solution_len), np.int32)}
        for i, row in enumerate(rows):
            ans = tok.encode(row["answer"])
            if not 0 < len(ans) <= self.target_width:
                raise ValueError(f"task gsm8k: answer {row['answer']!r} is {len(ans)} tokens; "
                                 f"answer_width={self.target_width}")
            out["target"][i, :len(ans)], out["target_len"][i] = ans, len(ans)
            sol = tok.encode(" " + row["solution"], eos=True)[: self.solution_len]
            out["solution"][i, :len(sol)], out["solution_mask"][i, :len(sol)] = sol, 1
        return out

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """B training rows from one bucket; see the module doc."""
        rng = np.random.default_rng([seed, step])
        sizes = np.array([len(b.index) for b in self.buckets], np.float64)
        bucket = self.buckets[int(rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        pick = rng.choice(len(bucket.index), size=batch_size,
                          replace=len(bucket.index) < batch_size)
        rows = [self.rows[int(bucket.index[j])] for j in pick]
        return self._fill(rows, bucket.tokens[pick], bucket.mask[pick])

    def eval_set(self, n: int, seed: int = EVAL_SEED) -> Dict[str, np.ndarray]:
        """The first n test questions that fit the largest bucket (fixed; `seed` is unused)."""
        del seed
        rows, ids = [], []
        test = self._sources["test"]
        for i in range(len(test)):
            if len(rows) == n:
                break
            row = self._decode(test[i])
            x = (([self.tokenizer.bos_id] if self.add_bos else [])
                 + self.tokenizer.encode(self._prompt_text(row)))
            if len(x) <= self.bucket_sizes[-1]:
                rows.append(row)
                ids.append(x)
        width = min(b for b in self.bucket_sizes if b >= max(map(len, ids)))
        prompt = np.full((len(rows), width), self.tokenizer.pad_id, np.int32)
        mask = np.zeros((len(rows), width), np.int32)
        for i, x in enumerate(ids):
            prompt[i, width - len(x):], mask[i, width - len(x):] = x, 1
        return self._fill(rows, prompt, mask)

    # -- reward (host_reward: DecodedAnswerReward) --------------------------------------------

    def decode_prompt(self, prompt):
        prompt = np.asarray(prompt)
        if prompt.ndim == 2:
            return [self.decode_prompt(p) for p in prompt]
        return self.tokenizer.decode(prompt[prompt != self.tokenizer.pad_id], stop_at_eos=False)

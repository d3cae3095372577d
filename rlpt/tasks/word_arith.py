"""One-step arithmetic word problems for a pretrained chat model, with the host math verifier.

    task = get("task", "word_arith")(tokenizer_path=".../SmolLM2-135M-Instruct.Q4_1.gguf")
    batch = task.make_batch(seed, step, B)

Source: the task of experiments/smollm2_rlvr (issue 14), picked there because
SmolLM2-135M-Instruct solves it only sometimes (greedy 16%, pass@8 41%: that README's task
selection, `select_task.py`). Questions in the style of GSM8K's one-step problems (arXiv
2110.14168), `kind`:

    add_small  "Leo has 9 shells. Leo gets 6 more shells. How many shells does Leo have now?"
               a, b in 1..9 (the experiment's task)
    add        the same with a, b in 2..29
    plain_add  "What is 12 + 30?", a, b in 1..50

Rows: `n_train` questions from `np.random.default_rng([data_seed, 0])` minus exact copies of the
`n_heldout` held-out ones from `np.random.default_rng([data_seed, 1])`; `eval_set(n)` is the first
n held-out questions. Prompts: the question (+ "\\n" + `instruction`) as one user message,
rendered by the checkpoint's own chat template (`rlpt.tokenizers.load_tokenizer(tokenizer_path)`:
a GGUF file or a HF directory) and left-padded with its pad id to one width (a multiple of 16
that holds every question). Completions end at the tokenizer's eos (set `sampling.stop_tokens`).

Batch (numpy, deterministic in (seed, step)): prompt, prompt_mask [B, W]; target [B, A] (the gold
number's tokens, right-padded), target_len [B]; solution, solution_mask [B, S] (the gold number
then eos, for an SFT warm-up).

Reward: `host_reward` = `rlpt.rewards.math_answer.gsm8k_reward(completion, gold)` on the decoded
completion (up to the eos) and the decoded gold number (\\boxed{}, `####`, "the answer is", else
the last number); `reward` is the same through `host_reward_callback` (the trainer's evaluation).
"""
import numpy as np

from rlpt.errors import UserError
from rlpt.registry import register
from rlpt.rewards.host_callback import host_reward_callback
from rlpt.tasks.decoded_answer import DecodedAnswerReward
from rlpt.tokenizers import load_tokenizer

NAMES = ["Tom", "Anna", "Ben", "Lucy", "Sam", "Mia", "Leo", "Emma", "Max", "Zoe", "Jack", "Lily"]
ITEMS = ["apples", "books", "marbles", "pencils", "stickers", "cookies", "coins", "cards",
         "shells", "balloons"]
RANGES = {"add_small": (1, 10), "add": (2, 30), "plain_add": (1, 51)}


def word_problem(rng, kind: str):
    """One question of `kind` (module doc): (question, gold answer string)."""
    name, item = NAMES[rng.integers(len(NAMES))], ITEMS[rng.integers(len(ITEMS))]
    a, b = rng.integers(*RANGES[kind], size=2)
    if kind == "plain_add":
        return f"What is {a} + {b}?", str(a + b)
    return (f"{name} has {a} {item}. {name} gets {b} more {item}. "
            f"How many {item} does {name} have now?", str(a + b))


@register("task", "word_arith")
class WordArithTask(DecodedAnswerReward):
    name = "word_arith"

    def __init__(self, tokenizer_path: str = "", kind: str = "add_small", n_train: int = 4000,
                 n_heldout: int = 256, instruction: str = "", data_seed: int = 0,
                 answer_width: int = 8):
        if not tokenizer_path:
            raise UserError("config task.kwargs.tokenizer_path: task word_arith needs the "
                            "checkpoint's tokenizer (a GGUF file or HF directory); for "
                            "configs/qwen_rlvr.py pass checkpoint=<the model's HF directory>")
        if kind not in RANGES:
            raise ValueError(f"task word_arith: kind={kind!r}; known: {sorted(RANGES)}")
        self.tokenizer = tok = load_tokenizer(tokenizer_path)
        if tok.eos_id is None:
            raise ValueError(f"task word_arith: {tokenizer_path} has no eos token")
        self.instruction, self.target_width = instruction, int(answer_width)
        rng = np.random.default_rng([data_seed, 1])
        self.heldout = [word_problem(rng, kind) for _ in range(n_heldout)]
        held = {q for q, _ in self.heldout}
        rng = np.random.default_rng([data_seed, 0])
        self.rows = [r for r in (word_problem(rng, kind) for _ in range(n_train))
                     if r[0] not in held]
        self._ids = {q: self.prompt_ids(q) for q, _ in self.rows + self.heldout}
        self.prompt_len = -(-max(map(len, self._ids.values())) // 16) * 16
        self.solution_len = self.target_width + 1
        self.target_pad = tok.pad_id   # what pads `target` (rlpt.tasks.transfer pads with it)
        self.reward = host_reward_callback(self.host_reward)

    def prompt_ids(self, question: str):
        """The question as one user message in the chat template, ready for the reply."""
        content = question + ("\n" + self.instruction if self.instruction else "")
        return self.tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                                  tokenize=True)

    def _batch(self, rows):
        tok, b = self.tokenizer, len(rows)
        out = {"prompt": np.full((b, self.prompt_len), tok.pad_id, np.int32),
               "prompt_mask": np.zeros((b, self.prompt_len), np.int32),
               "target": np.full((b, self.target_width), tok.pad_id, np.int32),
               "target_len": np.zeros((b,), np.int32),
               "solution": np.full((b, self.solution_len), tok.pad_id, np.int32),
               "solution_mask": np.zeros((b, self.solution_len), np.int32)}
        for i, (question, answer) in enumerate(rows):
            x, ans = self._ids[question], tok.encode(answer)
            if len(ans) > self.target_width:
                raise ValueError(f"task word_arith: answer {answer!r} is {len(ans)} tokens; "
                                 f"answer_width={self.target_width}")
            out["prompt"][i, -len(x):], out["prompt_mask"][i, -len(x):] = x, 1
            out["target"][i, :len(ans)], out["target_len"][i] = ans, len(ans)
            sol = ans + [tok.eos_id]
            out["solution"][i, :len(sol)], out["solution_mask"][i, :len(sol)] = sol, 1
        return out

    def make_batch(self, seed: int, step: int, batch_size: int):
        """`batch_size` training questions drawn with `np.random.default_rng([seed, step])`."""
        rng = np.random.default_rng([seed, step])
        pick = rng.choice(len(self.rows), size=batch_size, replace=len(self.rows) < batch_size)
        return self._batch([self.rows[j] for j in pick])

    def eval_set(self, n: int):
        """The first n held-out questions (the trainer's evaluation)."""
        if n > len(self.heldout):
            raise ValueError(f"task word_arith: eval.n_prompts={n} > n_heldout="
                             f"{len(self.heldout)}")
        return self._batch(self.heldout[:n])


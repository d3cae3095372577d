"""Preference data built from the verifiable synthetic tasks, and from JSONL files.

Synthetic pairs: chosen = the task's gold worked solution, rejected = a corruption of it that the
task's reference reward scores 0 (1-3 random edits: substitute / insert / delete a character of
the task's alphabet). For addition "57+38=" -> chosen "95", rejected e.g. "96", "9", "905".
Groups for reward models: the gold solution and K-1 distinct corruptions per prompt in a random
order, with `scores` = the task reward of each (1 for the gold one, 0 otherwise).
Sampled pairs (chosen/rejected drawn from the SFT model and scored by the task reward) are built
inside the jitted step instead: online DPO with `sync_every=None` (rlpt.preference.step).

Batches are numpy dicts, deterministic in (seed, step), with fixed shapes:
    prompt, prompt_mask [B, P]   left-padded, as the tasks' batches
    chosen, chosen_mask, rejected, rejected_mask [B, R]   right-padded, eos included
    target, target_len           the task's reward inputs (synthetic sources only)
    responses, response_mask [B, K, R], scores [B, K]     (groups)
"""
from typing import Dict, List

import numpy as np

from rlpt.errors import UserError
from rlpt.tasks.preference_data import read_preference_jsonl, tokenize_pairs

DIGITS = "0123456789"
ALPHABETS = {"addition": DIGITS, "multiplication": DIGITS, "countdown": DIGITS + "+-*"}


def corrupt(text: str, rng: np.random.Generator, alphabet: str, max_len: int) -> str:
    """1-3 random character edits of `text` (never empty, at most `max_len` characters)."""
    out = list(text)
    for _ in range(int(rng.integers(1, 4))):
        op = rng.choice(["sub", "sub", "ins", "del"])
        if op == "del" and len(out) > 1:
            del out[int(rng.integers(len(out)))]
        elif op == "ins" and len(out) < max_len:
            out.insert(int(rng.integers(len(out) + 1)), str(rng.choice(list(alphabet))))
        else:
            i = int(rng.integers(len(out)))
            out[i] = str(rng.choice([c for c in alphabet if c != out[i]] or list(alphabet)))
    return "".join(out)


def alphabet_of(task) -> str:
    """The characters a corruption draws from: the task's, or for a transfer task
    (rlpt.tasks.transfer) those of the components its batches hold (`train`, or all with -1)."""
    names = [task.name]
    if task.name == "transfer":
        names = [p.name for p in (task.parts if task.train == -1 else [task.parts[task.train]])]
    missing = [n for n in names if n not in ALPHABETS]
    if missing:
        raise ValueError(f"no corruption alphabet for task {missing[0]!r}; "
                         f"known: {sorted(ALPHABETS)}")
    return "".join(dict.fromkeys("".join(ALPHABETS[n] for n in names)))


class SyntheticPairs:
    """Pairs and groups from a registered synthetic task (see module docstring)."""

    def __init__(self, task):
        self.task, self.tok = task, task.tokenizer
        self.alphabet = alphabet_of(task)
        self.response_len = task.solution_len + 1  # a corruption may insert one character
        self.prompt_len = task.prompt_len

    def _wrong(self, rng, gold: str, example, avoid) -> str:
        for _ in range(100):
            text = corrupt(gold, rng, self.alphabet, self.response_len - 1)
            if text not in avoid and self.task.reference_reward(text, example, True) == 0.0:
                return text
        raise RuntimeError(f"could not corrupt {gold!r} into a distinct wrong answer")

    def _put(self, row: np.ndarray, mask: np.ndarray, text: str):
        ids = self.tok.encode(text, eos=True)
        row[:len(ids)], mask[:len(ids)] = ids, 1

    def _base(self, seed, step, batch_size):
        base = self.task.make_batch(seed, step, batch_size)
        rng = np.random.default_rng([seed, step, 1])
        golds = [self.tok.decode(base["solution"][i]) for i in range(batch_size)]
        keep = ("prompt", "prompt_mask", "target", "target_len")
        return {k: base[k] for k in keep}, golds, rng

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """Pairs: chosen = gold solution, rejected = a wrong corruption of it."""
        out, golds, rng = self._base(seed, step, batch_size)
        shape = (batch_size, self.response_len)
        for k in ("chosen", "chosen_mask", "rejected", "rejected_mask"):
            out[k] = np.zeros(shape, np.int32)
        for i, gold in enumerate(golds):
            wrong = self._wrong(rng, gold, self.task.example(out, i), {gold})
            self._put(out["chosen"][i], out["chosen_mask"][i], gold)
            self._put(out["rejected"][i], out["rejected_mask"][i], wrong)
        return out

    def make_groups(self, seed: int, step: int, batch_size: int, k: int) -> Dict[str, np.ndarray]:
        """K responses per prompt (gold + K-1 distinct corruptions, shuffled) and their task
        rewards as `scores [B, K]`."""
        out, golds, rng = self._base(seed, step, batch_size)
        out["responses"] = np.zeros((batch_size, k, self.response_len), np.int32)
        out["response_mask"] = np.zeros_like(out["responses"])
        out["scores"] = np.zeros((batch_size, k), np.float32)
        for i, gold in enumerate(golds):
            example = self.task.example(out, i)
            texts: List[str] = [gold]
            while len(texts) < k:
                texts.append(self._wrong(rng, gold, example, set(texts)))
            for j, slot in enumerate(rng.permutation(k)):
                self._put(out["responses"][i, slot], out["response_mask"][i, slot], texts[j])
                out["scores"][i, slot] = self.task.reference_reward(texts[j], example, True)
        return out


class JsonlPairs:
    """Pairs from a JSONL file (rlpt.tasks.preference_data), tokenized once with `tokenizer`.

    The last `n_eval` pairs are held out (`eval_batch`); training batches walk the rest in a
    random order per epoch, deterministic in (seed, epoch). No `target`: the task reward cannot
    score these responses (online DPO / DRPO with g from task rewards need a synthetic source).
    """

    def __init__(self, path: str, tokenizer, max_prompt_len: int, max_response_len: int,
                 n_eval: int = 0, truncate: bool = False):
        pairs = read_preference_jsonl(path)
        if not 0 <= n_eval < len(pairs):
            raise UserError(f"config pref.jsonl_eval_pairs: {n_eval} leaves no training pairs "
                            f"of the {len(pairs)} in {path}")
        arrays = tokenize_pairs(pairs, tokenizer, max_prompt_len=max_prompt_len,
                                max_response_len=max_response_len, truncate=truncate,
                                bos_id=tokenizer.bos_id)
        data = {"prompt": arrays["prompt_ids"], "prompt_mask": arrays["prompt_mask"],
                "chosen": arrays["chosen_ids"], "chosen_mask": arrays["chosen_mask"],
                "rejected": arrays["rejected_ids"], "rejected_mask": arrays["rejected_mask"]}
        n_train = len(pairs) - n_eval
        self.train = {k: v[:n_train] for k, v in data.items()}
        self.eval = {k: v[n_train:] for k, v in data.items()}
        self.n_train, self.prompt_len, self.response_len = n_train, max_prompt_len, max_response_len

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        start = step * batch_size
        idx = []
        while len(idx) < batch_size:
            epoch, pos = divmod(start + len(idx), self.n_train)
            perm = np.random.default_rng([seed, epoch]).permutation(self.n_train)
            idx.append(int(perm[pos]))
        return {k: v[idx] for k, v in self.train.items()}

    def eval_batch(self) -> Dict[str, np.ndarray]:
        return dict(self.eval)

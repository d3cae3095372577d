"""Prompt templates by name, and tokenised prompts left-padded into fixed-length buckets.

Templates (`TEMPLATES`, chosen by name from config):

- `plain`: `Question: {question}\\nAnswer:` for base models (GSM8K few-shot style, answer after
  `####` or as a final number);
- `qwen2_chat`: the ChatML format of Qwen2/Qwen2.5 instruct models (`<|im_start|>role\\n...
  <|im_end|>`), a system turn, the question plus an instruction to put the final answer in
  `\\boxed{}`, and the opened assistant turn.

Bucketing (`bucket_prompts`): each prompt goes into the smallest bucket at least as long as its
token ids and is left-padded with `tokenizer.pad_id`, so that every bucket has a static shape
`[rows, length]` and generation starts at the same position for all rows. Prompts longer than the
largest bucket raise an error naming them, or with `on_overflow="drop"` are dropped and reported.
Any tokenizer with `encode(str) -> list[int]` and `pad_id` works (plus `bos_id` for `add_bos`).
"""
import dataclasses
import string
from typing import Dict, List, Sequence

import numpy as np

QWEN2_SYSTEM = "You are a helpful assistant."
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclasses.dataclass(frozen=True)
class Template:
    """A `str.format` pattern and default values for its fields other than `question`."""
    pattern: str
    defaults: Dict[str, str] = dataclasses.field(default_factory=dict)


TEMPLATES: Dict[str, Template] = {
    "plain": Template("Question: {question}\nAnswer:"),
    "qwen2_chat": Template(
        "<|im_start|>system\n{system}<|im_end|>\n"
        "<|im_start|>user\n{question}\n{instruction}<|im_end|>\n"
        "<|im_start|>assistant\n",
        {"system": QWEN2_SYSTEM, "instruction": BOXED_INSTRUCTION}),
}


def format_prompt(question: str, template: str = "plain", **fields: str) -> str:
    """Fills the named template; `fields` override its defaults (e.g. `system=...`)."""
    if template not in TEMPLATES:
        raise KeyError(
            f"unknown prompt template {template!r}; known templates: {sorted(TEMPLATES)}")
    tpl = TEMPLATES[template]
    names = {f for _, f, _, _ in string.Formatter().parse(tpl.pattern) if f}
    unknown = set(fields) - (names - {"question"})
    if unknown:
        raise KeyError(f"template {template!r} has no field(s) {sorted(unknown)}; "
                       f"its fields: {sorted(names - {'question'})}")
    return tpl.pattern.format(**{**tpl.defaults, **fields, "question": question})


@dataclasses.dataclass
class PromptBucket:
    """Prompts of one bucket: `tokens`/`mask` int32 `[rows, length]`, left-padded.

    `index[r]` is the position in the input list of row r, or -1 for a filler row (all padding,
    mask 0) added to round the row count up to `rows_multiple`.
    """
    length: int
    tokens: np.ndarray
    mask: np.ndarray
    index: np.ndarray


@dataclasses.dataclass
class BucketedPrompts:
    """Every configured bucket (possibly with 0 rows) and the input positions dropped."""
    buckets: Dict[int, PromptBucket]
    dropped: List[int]

    @property
    def num_dropped(self) -> int:
        return len(self.dropped)


def _check_sizes(bucket_sizes: Sequence[int]) -> List[int]:
    sizes = [int(b) for b in bucket_sizes]
    if not sizes or any(b <= 0 for b in sizes) or sizes != sorted(set(sizes)):
        raise ValueError(f"bucket_sizes must be increasing positive integers, got {bucket_sizes!r}")
    return sizes


def bucket_prompts(texts: Sequence[str], tokenizer, bucket_sizes: Sequence[int] = (64, 128, 256),
                   *, on_overflow: str = "error", add_bos: bool = False,
                   rows_multiple: int = 1) -> BucketedPrompts:
    """Tokenises `texts` and left-pads each into the smallest bucket that holds it.

    on_overflow: "error" (default) raises a ValueError naming the first prompt longer than the
      largest bucket; "drop" leaves such prompts out and lists them in `.dropped`.
    add_bos: prepend `tokenizer.bos_id` to every prompt.
    rows_multiple: pad each bucket's row count up to a multiple of this with filler rows.
    """
    sizes = _check_sizes(bucket_sizes)
    if on_overflow not in ("error", "drop"):
        raise ValueError(f"on_overflow must be 'error' or 'drop', got {on_overflow!r}")
    if rows_multiple < 1:
        raise ValueError(f"rows_multiple must be >= 1, got {rows_multiple}")
    if add_bos and getattr(tokenizer, "bos_id", None) is None:
        raise ValueError("add_bos=True but the tokenizer has no bos_id")
    members: Dict[int, List] = {b: [] for b in sizes}
    dropped = []
    for i, text in enumerate(texts):
        ids = ([tokenizer.bos_id] if add_bos else []) + list(tokenizer.encode(text))
        if not ids:
            raise ValueError(f"prompt {i} encodes to no tokens: {text!r}")
        fits = [b for b in sizes if b >= len(ids)]
        if fits:
            members[fits[0]].append((i, ids))
        elif on_overflow == "drop":
            dropped.append(i)
        else:
            raise ValueError(
                f"prompt {i} has {len(ids)} tokens, more than the largest bucket {sizes[-1]} "
                f"(bucket_sizes={tuple(sizes)}); raise the bucket sizes or set "
                f"on_overflow='drop'. Prompt starts: {text[:80]!r}")
    buckets = {b: _pack(b, rows, tokenizer.pad_id, rows_multiple) for b, rows in members.items()}
    return BucketedPrompts(buckets=buckets, dropped=dropped)


def _pack(length: int, rows: List, pad_id: int, rows_multiple: int) -> PromptBucket:
    n = -(-len(rows) // rows_multiple) * rows_multiple
    tokens = np.full((n, length), pad_id, dtype=np.int32)
    mask = np.zeros((n, length), dtype=np.int32)
    index = np.full((n,), -1, dtype=np.int32)
    for r, (i, ids) in enumerate(rows):
        tokens[r, length - len(ids):] = ids
        mask[r, length - len(ids):] = 1
        index[r] = i
    return PromptBucket(length=length, tokens=tokens, mask=mask, index=index)

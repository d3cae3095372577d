"""Preference pairs on disk (JSONL) and as fixed-shape token arrays.

File format: one JSON object per line, `{"prompt": str, "chosen": str, "rejected": str}`.
Other fields are ignored; lines holding only whitespace are skipped. Every problem (bad JSON,
not an object, missing or non-string field, empty or whitespace-only string, bad UTF-8) raises
`PreferenceDataError` naming the file and the 1-based line number.

`tokenize_pairs` turns pairs into arrays for the DPO family: prompts left-padded (so that every
prompt ends at the same column and responses start together), responses right-padded, `int32`
ids and 0/1 `int32` masks.
"""
import dataclasses
import json
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from rlpt.errors import UserError

FIELDS = ("prompt", "chosen", "rejected")


class PreferenceDataError(UserError):
    """A malformed or unusable preference pair; the message names file and line."""


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    source: str = "<memory>"  # file the pair was read from
    line: int = 0             # 1-based line number in `source` (0: not from a file)

    def where(self) -> str:
        return f"{self.source}, line {self.line}" if self.line else f"{self.source}"


def parse_pair(text: str, source: str, line: int) -> PreferencePair:
    """Parses one JSONL line into a pair; errors name `source` and `line`."""
    where = f"{source}, line {line}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise PreferenceDataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(obj, dict):
        raise PreferenceDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for field in FIELDS:
        if field not in obj:
            raise PreferenceDataError(f"{where}: missing field {field!r} (need {list(FIELDS)})")
        value = obj[field]
        if not isinstance(value, str):
            raise PreferenceDataError(
                f"{where}: field {field!r} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise PreferenceDataError(f"{where}: field {field!r} is empty")
    return PreferencePair(obj["prompt"], obj["chosen"], obj["rejected"], source, line)


def read_preference_jsonl(path) -> List[PreferencePair]:
    """Reads every pair of a JSONL file (see module docstring); a file with no pair is an error."""
    source = str(path)
    pairs = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise PreferenceDataError(f"{source}, line {line_no}: invalid UTF-8 ({e})") from e
            if text.strip():
                pairs.append(parse_pair(text, source, line_no))
    if not pairs:
        raise PreferenceDataError(f"{source}: no preference pairs in file")
    return pairs


def write_preference_jsonl(path, pairs: Iterable[PreferencePair]) -> None:
    """Writes pairs in the format `read_preference_jsonl` reads (fields prompt/chosen/rejected)."""
    with open(path, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({k: getattr(p, k) for k in FIELDS}, ensure_ascii=False) + "\n")


def _encode(tokenizer, text, pair, field):
    try:
        return list(tokenizer.encode(text))
    except ValueError as e:
        raise PreferenceDataError(f"{pair.where()}: cannot tokenize {field!r}: {e}") from e


def _fit(ids, limit, keep, pair, field, truncate):
    """Returns ids, cut to `limit` keeping the `keep` end ("start"/"end"), or raises."""
    if len(ids) <= limit:
        return ids
    if not truncate:
        raise PreferenceDataError(
            f"{pair.where()}: {field!r} is {len(ids)} tokens, more than the maximum {limit} "
            f"(enable truncation or raise the limit)")
    return ids[:limit] if keep == "start" else ids[len(ids) - limit:]


def tokenize_pairs(pairs: Sequence[PreferencePair], tokenizer, *, max_prompt_len: int,
                   max_response_len: int, truncate: bool = False, append_eos: bool = True,
                   bos_id: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Tokenizes pairs into fixed shapes; `tokenizer` needs `encode(str) -> list[int]`, `pad_id`,
    and `eos_id` (when `append_eos`).

    Prompt: `[bos_id] + encode(prompt)` (bos only when given), left-padded to `max_prompt_len`.
    Responses: `encode(text) + [eos_id]` (eos counted in the length and mask, so the model
    learns to stop), right-padded to `max_response_len`.
    Too long: raises `PreferenceDataError` naming file/line, unless `truncate`, which keeps the
    END of the prompt (the part next to the response) and the START of each response (then the
    eos may be cut off).

    Returns int32 arrays: prompt_ids/prompt_mask [P, max_prompt_len], chosen_ids/chosen_mask and
    rejected_ids/rejected_mask [P, max_response_len], prompt_len, len_w, len_l [P] (token counts;
    len_w/len_l are SimPO's |y_w|, |y_l|).
    """
    if max_prompt_len < 1 or max_response_len < 1:
        raise ValueError(f"max lengths must be >= 1, got {max_prompt_len}, {max_response_len}")
    if append_eos and getattr(tokenizer, "eos_id", None) is None:
        raise ValueError("append_eos=True but the tokenizer has no eos_id")
    n, pad = len(pairs), tokenizer.pad_id
    out = {
        "prompt_ids": np.full((n, max_prompt_len), pad, np.int32),
        "prompt_mask": np.zeros((n, max_prompt_len), np.int32),
    }
    for name in ("chosen", "rejected"):
        out[f"{name}_ids"] = np.full((n, max_response_len), pad, np.int32)
        out[f"{name}_mask"] = np.zeros((n, max_response_len), np.int32)
    lens = {k: np.zeros((n,), np.int32) for k in ("prompt_len", "len_w", "len_l")}
    for row, pair in enumerate(pairs):
        prompt = ([bos_id] if bos_id is not None else []) + _encode(
            tokenizer, pair.prompt, pair, "prompt")
        prompt = _fit(prompt, max_prompt_len, "end", pair, "prompt", truncate)
        out["prompt_ids"][row, max_prompt_len - len(prompt):] = prompt
        out["prompt_mask"][row, max_prompt_len - len(prompt):] = 1
        lens["prompt_len"][row] = len(prompt)
        for name, len_key in (("chosen", "len_w"), ("rejected", "len_l")):
            ids = _encode(tokenizer, getattr(pair, name), pair, name)
            ids = ids + ([tokenizer.eos_id] if append_eos else [])
            ids = _fit(ids, max_response_len, "start", pair, name, truncate)
            out[f"{name}_ids"][row, :len(ids)] = ids
            out[f"{name}_mask"][row, :len(ids)] = 1
            lens[len_key][row] = len(ids)
    out.update(lens)
    return out

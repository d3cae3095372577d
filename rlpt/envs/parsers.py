"""Parsers for formatted completions, each with its format reward.

A completion is the model's text (single turn) or a list of chat messages (multi turn: the
parsers read the last `assistant` message).

- `XMLParser(("think", "answer"))`: `<think>...</think><answer>...</answer>`; `parse(text)` gives
  each tag's content (its last occurrence, stripped; None when absent); `parse_answer` the last
  field's; `format_reward` the share of the fields present as a closed pair, each exactly once,
  in the declared order (1.0 for a perfect completion).
- `ThinkParser()`: free reasoning in `<think>...</think>` followed by the answer as plain text
  (DeepSeek-R1's format, arXiv 2501.12948); `parse_answer` is the text after `</think>`
  (the whole text when there is no think block, or None with `strict=True`); `format_reward` is
  1 for exactly one think block at the start followed by a non-empty answer, else 0.

No parser evaluates the model's text: it is only searched with regular expressions.
"""
import re
from typing import Dict, Optional, Sequence, Union

Completion = Union[str, Sequence[Dict]]


def last_assistant_text(completion: Completion) -> str:
    """The text a parser reads: the string itself, or the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    for m in reversed(list(completion)):
        if m.get("role") == "assistant":
            return str(m.get("content") or "")
    return ""


class XMLParser:
    def __init__(self, fields: Sequence[str] = ("think", "answer")):
        if not fields or any(not re.fullmatch(r"[A-Za-z_][\w-]*", f) for f in fields):
            raise ValueError(f"XMLParser: fields must be tag names, got {list(fields)}")
        self.fields = tuple(fields)

    def parse(self, completion: Completion) -> Dict[str, Optional[str]]:
        text = last_assistant_text(completion)
        out = {}
        for f in self.fields:
            found = re.findall(rf"<{f}>(.*?)</{f}>", text, flags=re.S)
            out[f] = found[-1].strip() if found else None
        return out

    def parse_answer(self, completion: Completion) -> Optional[str]:
        return self.parse(completion)[self.fields[-1]]

    def format_reward(self, completion) -> float:
        """Share of the fields present as one closed pair each, in the declared order."""
        text = last_assistant_text(completion)
        good, last_end = 0, -1
        for f in self.fields:
            spans = [m.span() for m in re.finditer(rf"<{f}>(.*?)</{f}>", text, flags=re.S)]
            if len(spans) == 1 and text.count(f"<{f}>") == 1 and spans[0][0] > last_end:
                good += 1
                last_end = spans[0][1] - 1
        return good / len(self.fields)

    def format_prompt(self) -> str:
        """An instruction describing the format, for a system prompt."""
        return "Respond in the following format:\n" + "\n".join(
            f"<{f}>\n...\n</{f}>" for f in self.fields)


class ThinkParser:
    def __init__(self, strict: bool = False):
        self.strict = strict

    def parse_answer(self, completion: Completion) -> Optional[str]:
        text = last_assistant_text(completion)
        if "</think>" not in text:
            return None if self.strict else text.strip()
        return text.rsplit("</think>", 1)[1].strip()

    def format_reward(self, completion) -> float:
        text = last_assistant_text(completion).lstrip()
        ok = (text.startswith("<think>") and text.count("<think>") == 1
              and text.count("</think>") == 1 and text.split("</think>", 1)[1].strip() != "")
        return float(ok)

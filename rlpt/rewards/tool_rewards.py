"""Host-side rewards for tool use and next-token reasoning.

- ToolRL (arXiv 2504.13958) [code: `verl/utils/reward_score/rlla.py` of the authors' release]:
  `R = R_format + R_correct`, with the dynamic ("SCHEDULEREWARD") range schedule.
- ARTIST (arXiv 2505.01441): answer (2 if correct) + format + fraction of successful tool calls.
- RPT, Reinforcement Pre-Training (arXiv 2506.08007): byte-prefix next-token reward.
- General-Reasoner (arXiv 2505.14652): verifier reward with an answer-length penalty.

Tool calls are parsed with `json.loads`; nothing here evaluates model output as code. Model
text never makes a reward raise (over-deep JSON, integers past Python's 4300-digit limit and
unclosed tags score as unparsable) and every parser is linear in the text's length.
"""
import json
import re
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Union

from rlpt.rewards.math_answer import extract_boxed, is_equivalent

# ----------------------------------------------------------------------------- ToolRL

TOOLRL_FORMAT_RANGE = (0.0, 1.0)
TOOLRL_CORRECT_RANGE = (-3.0, 3.0)


def match_score(gold: Sequence, pred: Sequence) -> float:
    """ToolRL's multiset Jaccard: 1 for identical lists, 0 if either is empty, else |∩|/|∪|."""
    if list(gold) == list(pred):
        return 1.0
    if not gold or not pred:
        return 0.0
    g, p = Counter(gold), Counter(pred)
    inter = sum((g & p).values())
    return inter / (len(gold) + len(pred) - inter)


def parse_tool_calls(text: str) -> Optional[List[dict]]:
    """Calls in the first `<tool_call>...</tool_call>` block, one JSON object per line.

    Returns None when the text has no complete block; raises ValueError (only) when a line is
    not a JSON object with a string `name` and a dict `parameters`, including JSON nested too
    deep for the decoder or holding an integer too long to convert (ToolRL scores these as
    unparsable).
    """
    if "<tool_call>" not in text or "</tool_call>" not in text:
        return None
    block = text.split("<tool_call>", 1)[1].split("</tool_call>", 1)[0].strip()
    calls = []
    for line in block.split("\n"):
        try:
            call = json.loads(line)
        except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
            why = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
            raise ValueError(f"tool call line is not JSON: {line[:80]!r} ({why})") from e
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)
                and isinstance(call.get("parameters"), dict)):
            raise ValueError(
                f"tool call needs a string 'name' and a dict 'parameters': {line[:80]!r}")
        calls.append(call)
    return calls


def toolrl_correctness_score(gold: Sequence[dict], pred: Sequence[dict]) -> tuple:
    """`(S, S_max)`: name Jaccard + per gold call the best unused same-name prediction's
    parameter-key Jaccard + count of exactly matching values; `S_max = 1 + sum(1 + |params|)`."""
    score = match_score([c["name"] for c in gold], [c["name"] for c in pred])
    s_max = 1.0
    used = set()
    for g in gold:
        s_max += 1 + len(g["parameters"])
        best, best_i = 0.0, None
        for i, p in enumerate(pred):
            if i in used or p["name"] != g["name"]:
                continue
            pp = p["parameters"]
            s = match_score(list(g["parameters"]), list(pp)) + sum(
                1.0 for k, v in g["parameters"].items() if k in pp and pp[k] == v)
            if s > best:
                best, best_i = s, i
        if best_i is not None:
            used.add(best_i)
            score += best
    return score, s_max


def toolrl_ranges(step: Optional[int] = None, steps: int = 150) -> Dict[str, tuple]:
    """(min, max) of the format and correctness rewards at training `step`.

    `step=None`: the fixed ranges, format [0, 1] and correctness [-3, 3]. Otherwise the released
    code's dynamic schedule (env SCHEDULEREWARD=1), linear in `step / steps` and clipped:
    format max 2 -> 1 (reached at `steps`); format min -2 rising towards 0 but capped at -1
    (reached at `steps / 2`); correctness max 2 -> 3 and min -2 -> -3 (reached at `steps`). The -1
    cap on the format minimum is the released code's, kept as is (the paper's text describes the
    schedule only qualitatively).
    """
    (f_lo, f_hi), (c_lo, c_hi) = TOOLRL_FORMAT_RANGE, TOOLRL_CORRECT_RANGE
    if step is None:
        return {"format": (f_lo, f_hi), "correct": (c_lo, c_hi)}
    t = step / steps
    return {
        "format": (min(-1.0, -2.0 + (2.0 + f_lo) * t), max(1.0, 2.0 - (2.0 - f_hi) * t)),
        "correct": (max(-3.0, -2.0 + (c_lo + 2.0) * t), min(3.0, 2.0 + (c_hi - 2.0) * t)),
    }


_TOOLRL_LAYOUTS = {  # (gold has <tool_call>, gold has <response>) -> required response layout
    (True, False): r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>",
    (False, True): r"<think>.*?</think>\n<response>.*?</response>",
    (True, True): r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>\n<response>.*?</response>",
    (False, False): r"<think>.*?</think>",
}


def toolrl_format_ok(response: str, gold: str) -> bool:
    """The response has the layout the gold answer implies, each required tag exactly once.

    The released code counts only the tool_call/response tags; counting `<think>` too follows
    the paper's "each exactly once" and rejects a second think block hidden inside the first.
    """
    key = ("<tool_call>" in gold, "<response>" in gold)
    tags = ["think"] + ["tool_call"] * key[0] + ["response"] * key[1]
    # Counted first: with each tag once, the layout's lazy `.*?` cannot backtrack quadratically.
    if not all(response.count(f"<{t}>") == 1 and response.count(f"</{t}>") == 1 for t in tags):
        return False
    return re.fullmatch(_TOOLRL_LAYOUTS[key] + r"\n?", response, re.DOTALL) is not None


def toolrl_reward(response: str, gold: str, step: Optional[int] = None,
                  steps: int = 150) -> Dict[str, float]:
    """ToolRL reward of one response against the gold answer text (same tag format).

    Correctness: 0 when the gold has no tool call; the maximum for an exact match of the call
    list; the minimum when the response's calls are missing or unparsable; otherwise
    `(max - min) * S / S_max + min` (= `6 S / S_max - 3` with the fixed range). Returns
    `{"format", "correct", "reward"}`.
    """
    ranges = toolrl_ranges(step, steps)
    f_lo, f_hi = ranges["format"]
    c_lo, c_hi = ranges["correct"]
    fmt = f_hi if toolrl_format_ok(response, gold) else f_lo
    gold_calls = parse_tool_calls(gold)
    if gold_calls is None:
        correct = 0.0
    else:
        try:
            pred_calls = parse_tool_calls(response)
        except ValueError:
            pred_calls = None
        if pred_calls is None:
            correct = c_lo
        elif pred_calls == gold_calls:
            correct = c_hi
        else:
            s, s_max = toolrl_correctness_score(gold_calls, pred_calls)
            correct = (c_hi - c_lo) * s / s_max + c_lo
    return {"format": fmt, "correct": correct, "reward": fmt + correct}


# ----------------------------------------------------------------------------- ARTIST

ARTIST_TAGS = {"think": "think", "tool": "python", "output": "output", "answer": "answer"}


def tag_blocks(text: str, tag: str) -> List[str]:
    """Contents of the non-overlapping `<tag>...</tag>` blocks, left to right, each closed by
    the first `</tag>` after its opening (what `re.findall` with a lazy `.*?` returns), in time
    linear in the text even when many blocks are left open."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    out, pos = [], 0
    while (start := text.find(opening, pos)) != -1:
        end = text.find(closing, start + len(opening))
        if end == -1:  # no closing tag after this opening: none after any later one either
            break
        out.append(text[start + len(opening):end])
        pos = end + len(closing)
    return out


def artist_format_ok(response: str, tags: Dict[str, str] = ARTIST_TAGS) -> bool:
    """Whether the response is a sequence of tagged blocks (think / tool / output / answer, no
    nesting, only whitespace between) in which every tool block is directly followed by its
    output block, an output block follows only a tool block, and the one answer block is last.

    ARTIST's paper describes its format reward only in words; this structural reading [2nd] is
    ours, and the tag names are configurable.
    """
    names = "|".join(re.escape(t) for t in tags.values())
    opening, any_tag = re.compile(rf"<({names})>"), re.compile(rf"</?(?:{names})>")
    blocks, pos = [], 0
    while (m := opening.search(response, pos)) is not None:
        if response[pos:m.start()].strip():
            return False
        closing = f"</{m.group(1)}>"
        end = response.find(closing, m.end())
        if end == -1 or any_tag.search(response, m.end(), end):
            return False  # unclosed, or a nested or stray tag inside the block
        blocks.append(m.group(1))
        pos = end + len(closing)
    if response[pos:].strip() or not blocks or blocks[-1] != tags["answer"]:
        return False
    if blocks.count(tags["answer"]) != 1:
        return False
    for i, b in enumerate(blocks):
        prev = blocks[i - 1] if i > 0 else None
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if (b == tags["tool"] and nxt != tags["output"]) or \
                (b == tags["output"] and prev != tags["tool"]):
            return False
    return True


def tool_success_from_outputs(response: str, tags: Dict[str, str] = ARTIST_TAGS,
                              error_markers: Sequence[str] = ("Traceback", "Error")) -> List[bool]:
    """Per tool output block: True unless it contains one of `error_markers`."""
    return [not any(e in o for e in error_markers) for o in tag_blocks(response, tags["output"])]


def artist_reward(response: str, gold: str, tool_success: Optional[Sequence[bool]] = None, *,
                  answer_reward: float = 2.0, format_reward: float = 1.0,
                  verifier: Callable[[str, str], bool] = is_equivalent,
                  tags: Dict[str, str] = ARTIST_TAGS) -> Dict[str, float]:
    """ARTIST reward: answer (`answer_reward` if the last answer block verifies against `gold`)
    + format (`format_reward` if `artist_format_ok`) + tool-success fraction (successful / total
    tool calls, 0 with no calls). `tool_success` lists each call's outcome as the environment
    saw it; when None it is read from the output blocks (`tool_success_from_outputs`).

    The tool output tokens themselves must be masked out of the loss and its normaliser; that
    is the rollout's job, not the reward's. Returns `{"answer", "format", "tool", "reward"}`.
    """
    found = tag_blocks(response, tags["answer"])
    pred = (extract_boxed(found[-1]) or found[-1].strip()) if found else None
    answer = answer_reward if pred is not None and verifier(pred, gold) else 0.0
    fmt = format_reward if artist_format_ok(response, tags) else 0.0
    if tool_success is None:
        tool_success = tool_success_from_outputs(response, tags)
    tool = sum(map(bool, tool_success)) / len(tool_success) if len(tool_success) else 0.0
    return {"answer": answer, "format": fmt, "tool": tool, "reward": answer + fmt + tool}


# ----------------------------------------------------------------------------- RPT


def rpt_prefix_reward(prediction: Union[str, bytes],
                      gold_tokens: Sequence[Union[str, bytes]]) -> float:
    """1.0 iff the prediction's utf-8 bytes are a non-empty prefix of the ground-truth
    continuation's bytes ending on one of its token boundaries, else 0.0 (RPT, eq. 3)."""
    as_bytes = (lambda x: x if isinstance(x, bytes) else x.encode("utf-8"))
    pred = as_bytes(prediction)
    gold = [as_bytes(t) for t in gold_tokens]
    boundaries, n = set(), 0
    for tok in gold:
        n += len(tok)
        boundaries.add(n)
    return float(len(pred) in boundaries and b"".join(gold).startswith(pred))


def rpt_reward(response: str, gold_tokens: Sequence[Union[str, bytes]]) -> float:
    """RPT reward of a response whose prediction is its last `\\boxed{...}` content, taken
    verbatim (leading spaces matter: a next token is often " cat"); 0.0 without a box."""
    pred = extract_boxed(response, strip=False)
    return 0.0 if pred is None else rpt_prefix_reward(pred, gold_tokens)


# ----------------------------------------------------------------------------- General-Reasoner


def general_reasoner_reward(response: str, gold: str, *,
                            verifier: Callable[[str, str], bool] = is_equivalent,
                            extract: Callable[[str], Optional[str]] = extract_boxed,
                            count_tokens: Callable[[str], int] = lambda s: len(s.split()),
                            no_answer: float = -0.5, wrong: float = 0.0,
                            length_coef: float = 0.05, length_cap: int = 10) -> float:
    """General-Reasoner reward [code, per the spec]: `no_answer` (-0.5) when nothing is
    extracted; `wrong` (0) when the verifier rejects; when it accepts,
    `1 - length_coef * min(length_cap, |tokens(answer) - tokens(gold)|)`.

    `verifier(pred, gold) -> bool` is pluggable (the paper uses a 1.5B generative verifier);
    the default is the rule-based `is_equivalent`. `count_tokens` should be the policy
    tokenizer's length (e.g. `lambda s: len(tok.encode(s))`); the default counts words.
    """
    answer = extract(response)
    if answer is None:
        return no_answer
    if not verifier(answer, gold):
        return wrong
    gap = abs(count_tokens(answer) - count_tokens(gold))
    return 1.0 - length_coef * min(length_cap, gap)

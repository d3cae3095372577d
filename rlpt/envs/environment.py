"""A Python environment: a dataset, a rubric and an interaction protocol (the `verifiers` shape).

    env = Environment(dataset=[{"prompt": "What is 2+3?", "answer": "5"}, ...],
                      rubric=Rubric([correct]), system_prompt="Answer with a number.")
    env = Environment(..., env_response=respond, max_turns=6)      # multi-turn

- **dataset**: rows (dicts) with `prompt` (a string, the user's message, or a list of chat
  messages), optional `answer` and `info` (a dict). A row without a prompt is refused naming
  its index.
- **rubric**: `rlpt.envs.rubric.Rubric`, scored on the finished episodes.
- **protocol**: single-turn without `env_response`; multi-turn with
  `env_response(state, messages) -> (new_messages, done)`, called in Python after each policy
  turn with the conversation so far (prompt + completion messages); its messages are appended
  (as `user` or `tool` turns) and the policy's next turn continues the same KV cache
  (rlpt.envs.turns). `state` is the episode's dict (`answer`, `info`, `turn`, `stopped`: the
  last policy turn ended at a stop token rather than the turn cap; plus whatever the
  environment keeps in it, from `setup_state(row)`), the rubric sees it as `state`.
- **tools** (optional): function schemas the prompt declares (rlpt.envs.tools builds a tool
  environment from plain Python functions).
- **demonstration** (optional): `demonstration(row) -> messages`, a gold completion of the row
  (assistant turns, each followed by the messages `env_response` would answer with): what an SFT
  warm-up teacher-forces (`demonstration_ids`: the loss on the assistant turns only).
- **compiled** (optional): the same protocol as one compiled program, an `rlpt.sampling.Rollout`
  whose decode loop runs the environment's step on device (the calculator:
  rlpt.envs.calculator_env); the fused step plays it, `env_response` is then the Python
  implementation of the same game (the host loop, for comparison and debugging).

An episode ends when `env_response` says done, after `max_turns` policy turns, or when the
token buffer (`sampling.max_new_tokens` columns) is full. An `env_response` that raises or
returns something else than `(list of messages, bool)` ends the episode and is counted in
`env/errors`; it never stops training.

`Chat` renders conversations with the tokenizer's own chat template: the prompt with the
generation prompt, and each environment reply as the text the template adds after the
assistant's turn (`reply_ids`).
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from rlpt.errors import UserError
from rlpt.envs.rubric import Rubric
from rlpt.sampling import Rollout


@dataclasses.dataclass
class Environment:
    dataset: Sequence[Dict]
    rubric: Rubric
    env_response: Optional[Callable] = None
    system_prompt: Optional[str] = None
    max_turns: int = 1
    setup_state: Optional[Callable] = None
    tools: Sequence[Dict] = ()   # function schemas (rlpt.envs.tools), rendered by Chat
    name: str = "env"
    compiled: Optional[Rollout] = None   # the protocol inside the decode loop (module doc)
    demonstration: Optional[Callable] = None   # row -> gold completion messages (module doc)

    def __post_init__(self):
        if self.env_response is None and self.max_turns != 1:
            raise UserError(f"environment {self.name}: max_turns={self.max_turns} needs an "
                            "env_response (a single-turn environment has max_turns=1)")
        if self.max_turns < 1:
            raise UserError(f"environment {self.name}: max_turns={self.max_turns} must be >= 1")
        if not len(self.dataset):
            raise UserError(f"environment {self.name}: the dataset is empty")
        for i, row in enumerate(self.dataset):
            if not isinstance(row, dict) or "prompt" not in row:
                raise UserError(f"environment {self.name}: dataset row {i} has no 'prompt' "
                                f"(got {type(row).__name__} {str(row)[:60]!r})")

    def prompt_messages(self, row: Dict) -> List[Dict]:
        p = row["prompt"]
        msgs = [{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p]
        if self.system_prompt and not (msgs and msgs[0].get("role") == "system"):
            msgs = [{"role": "system", "content": self.system_prompt}] + msgs
        return msgs

    def initial_state(self, row: Dict) -> Dict:
        state = {"answer": row.get("answer"), "info": dict(row.get("info") or {}), "turn": 0}
        if self.setup_state is not None:
            state.update(self.setup_state(row) or {})
        return state


class Chat:
    """Conversations to token ids with `tokenizer.apply_chat_template` (an rlpt HFTokenizer, or
    anything with `apply_chat_template(messages, add_generation_prompt, tokenize, **kw)`,
    `encode`, `decode`); `end_of_turn` is the text of the token that ends an assistant turn
    (default: the tokenizer's eos token, `<|im_end|>` for SmolLM2 and Qwen)."""

    def __init__(self, tokenizer, end_of_turn: Optional[str] = None):
        self.tok = tokenizer
        self.end_of_turn = end_of_turn or getattr(tokenizer, "special_tokens", {}).get(
            "eos_token") or ""

    def render(self, messages, generation_prompt: bool, tools: Sequence[Dict] = ()) -> str:
        """The template's text; `tools` (function schemas) go to a template that reads them,
        else into the system message as Hermes instructions (rlpt.envs.tools)."""
        kw = {}
        if tools and "tools" in (getattr(self.tok, "chat_template", None) or ""):
            kw["tools"] = list(tools)
        elif tools:
            from rlpt.envs.tools import hermes_system_prompt
            messages = list(messages)
            has_system = bool(messages) and messages[0].get("role") == "system"
            system = hermes_system_prompt(tools, messages[0]["content"] if has_system else "")
            messages = [{"role": "system", "content": system}] + messages[int(has_system):]
        return self.tok.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                            **kw)

    def prompt_ids(self, messages, tools: Sequence[Dict] = ()) -> List[int]:
        return self.tok.encode(self.render(messages, True, tools))

    def assistant_ids(self, content: str, last: bool) -> List[int]:
        """The ids a policy turn writing `content` samples: the text, then the end-of-turn
        token (its stop token), on every turn (`last` matters to `PlainChat` only)."""
        return self.tok.encode(content + self.end_of_turn)

    def text(self, ids) -> str:
        """A policy turn's text (special tokens dropped, up to the end-of-turn token)."""
        return self.tok.decode(list(ids), stop_at_eos=True)

    def reply_ids(self, history: List[Dict], new: List[Dict], turn_closed: bool,
                  tools: Sequence[Dict] = ()) -> List[int]:
        """The ids that follow the policy's last turn (already in the cache, up to its stop token
        when `turn_closed`) so that the conversation reads as the template renders `history +
        new` with the generation prompt: the template's text after the assistant's end-of-turn
        token (e.g. the newline after `<|im_end|>`; the token itself too when the turn was cut
        at the cap), then the new messages and the next assistant header."""
        base = self.render(history, False, tools)
        full = self.render(list(history) + list(new), True, tools)
        if not full.startswith(base):
            raise ValueError("the chat template renders a conversation differently once "
                             "messages are appended; multi-turn rollouts need a template that "
                             "extends the history as it is")
        eot = self.end_of_turn
        cut = base.rfind(eot) if eot else -1
        tail = base[cut + len(eot):] if cut >= 0 else ""
        tail = tail if tail.strip() == "" else ""   # only what follows the assistant's own eot
        return self.tok.encode(("" if turn_closed or not eot else eot) + tail + full[len(base):])


def prompt_batch(env: Environment, chat: Chat, row_ids, width: int, pad_id: int) -> Dict:
    """Rows `row_ids` of `env.dataset` as a batch: `prompt`, `prompt_mask` int32 [B, width]
    (the chat-template prompt, left-padded) and `row` [B] (their dataset indices, which the
    host rollout reads). A prompt longer than `width` is refused naming its row."""
    row_ids = np.asarray(row_ids, np.int32)
    prompt = np.full((len(row_ids), width), pad_id, np.int32)
    mask = np.zeros((len(row_ids), width), np.int32)
    for b, i in enumerate(row_ids):
        ids = chat.prompt_ids(env.prompt_messages(env.dataset[int(i)]), env.tools)
        if len(ids) > width:
            raise UserError(f"environment {env.name}: dataset row {int(i)}'s prompt is "
                            f"{len(ids)} tokens, more than the prompt width {width}")
        prompt[b, width - len(ids):], mask[b, width - len(ids):] = ids, 1
    return {"prompt": prompt, "prompt_mask": mask, "row": row_ids}


class PlainChat:
    """A `Chat` for a tokenizer without a chat template (the character tokenizer of the
    synthetic tasks): the prompt is its messages' text joined (system messages dropped), each
    reply its new messages' text as is, with no roles or headers (a raw-text protocol, e.g. a
    tool result `<5535>` written right after the call)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def prompt_ids(self, messages, tools: Sequence[Dict] = ()) -> List[int]:
        return self.tok.encode("".join(m["content"] for m in messages if m["role"] != "system"))

    def text(self, ids) -> str:
        return self.tok.decode(list(ids), stop_at_eos=True)

    def assistant_ids(self, content: str, last: bool) -> List[int]:
        """A turn's ids: its text (a turn before a reply ends at a stop character of its own,
        e.g. the calculator's `]`), then eos on the last turn."""
        return self.tok.encode(content) + ([self.tok.eos_id] if last else [])

    def reply_ids(self, history, new, turn_closed: bool, tools: Sequence[Dict] = ()) -> List[int]:
        return self.tok.encode("".join(m["content"] for m in new))


def demonstration_ids(env: Environment, chat, row: Dict) -> tuple:
    """`(ids, loss_mask)` of `env.demonstration(row)` after the row's prompt, as a rollout would
    hold them: each assistant turn's ids (`chat.assistant_ids`, loss 1), then the environment's
    messages that follow it as `chat.reply_ids` renders them (loss 0); messages after the last
    assistant turn end the episode and are not model input (dropped). A demonstration that does
    not start with an assistant turn is refused naming the row."""
    demo = list(env.demonstration(row))
    history = env.prompt_messages(row)
    if not demo or demo[0].get("role") != "assistant":
        raise UserError(f"environment {env.name}: the demonstration of row "
                        f"{row.get('prompt')!r:.60} must start with an assistant turn")
    last = max(i for i, m in enumerate(demo) if m["role"] == "assistant")
    ids, mask = [], []
    for i, m in enumerate(demo[:last + 1]):
        if m["role"] == "assistant":
            a = chat.assistant_ids(m["content"], i == last)
            ids, mask = ids + a, mask + [1] * len(a)
            history.append(m)
            new = []
            for n in demo[i + 1:last + 1]:
                if n["role"] == "assistant":
                    break
                new.append(n)
            if new:
                r = chat.reply_ids(history, new, True, env.tools)
                ids, mask = ids + r, mask + [0] * len(r)
                history += new
    return ids, mask

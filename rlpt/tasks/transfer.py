"""The `transfer` task: warm up on several tasks, train RL on one, evaluate on all (domain transfer:
does RL on one task help or hurt the others? UIUC, arXiv 2507.00432; issue 27, claim 13).

    c.task.name = "transfer"
    c.task.kwargs = dict(components=[dict(name="addition", kwargs=dict(max_digits=2)),
                                     dict(name="multiplication", kwargs=dict(max_digits_a=2))],
                         train=0)

- `make_batch` (RL): component `train`'s batch, or with `train=-1` every component's in equal
  shares (multi-task RL: rlpt.rewards.mixed scores one component with a reward model);
- `sft_batch` (the warm-up): every component in equal shares, so the SFT model has some skill
  on each (it stands for the pretrained model);
- `eval_set(n, seed)`: n // k held-out rows of each of the k components (the first takes the
  remainder), with `difficulty` = the component's index, so every evaluation metric is also
  reported per component (`greedy_acc_d0`, `pass@1_d1`, ...: rlpt.evaluation.metrics.by_difficulty).

Every batch is padded to the components' widest prompt (on the left), target and solution (on the
right). The components must share one reward function (e.g. addition and multiplication: the
exact answer; two word_arith kinds with one tokenizer: the host math verifier), which scores
every row. `sft_source` leaves `train` out, so arms that train RL on
different components share their SFT models in a sweep (rlpt.sweep.sft_cache).
"""
import inspect
from typing import Dict, List

import numpy as np

from rlpt import registry
from rlpt.tasks import sft_batch
from rlpt.tasks.synthetic import EVAL_SEED


def _reward_of(part):
    """What scores a component's rows: its registered reward function, or for a task that
    checks decoded text (word_arith) its class's host verifier with its tokenizer's vocabulary."""
    name = getattr(part, "reward_name", None)
    if name is not None:
        return registry.get("reward", name)
    return (type(part).host_reward, getattr(part.tokenizer, "vocab_size", None))


BATCH_KEYS = ("prompt", "prompt_mask", "target", "target_len", "solution", "solution_mask")


@registry.register("task", "transfer")
class TransferTask:
    name = "transfer"

    def __init__(self, components=(), train: int = 0):
        if len(components) < 2:
            raise ValueError(f"transfer: components={list(components)!r}; give at least two "
                             "{name, kwargs} tasks")
        self.parts = [registry.get("task", c["name"])(**dict(c.get("kwargs") or {}))
                      for c in components]
        self.labels = [c["name"] for c in components]
        if not -1 <= train < len(self.parts):
            raise ValueError(f"transfer: train={train} is not the index of a component "
                             f"(0..{len(self.parts) - 1}: {self.labels}) or -1 (all of them)")
        rewards = {_reward_of(p) for p in self.parts}
        if len(rewards) > 1:
            raise ValueError(f"transfer: the components {self.labels} score with different "
                             "reward functions; one batch needs one")
        self.train = train
        self.tokenizer = self.parts[0].tokenizer
        self.prompt_len = max(p.prompt_len for p in self.parts)
        self.target_width = max(p.target_width for p in self.parts)
        self.solution_len = max(p.solution_len for p in self.parts)

    @staticmethod
    def sft_source(kwargs):
        """The warm-up reads every component whichever one RL trains (rlpt.tasks.sft_source)."""
        return "transfer", {k: v for k, v in kwargs.items() if k != "train"}

    def _fit(self, part, b: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """A component's batch padded to the common widths."""
        if set(b) != set(BATCH_KEYS):
            raise ValueError(f"transfer: component batch keys {sorted(b)}; expected "
                             f"{sorted(BATCH_KEYS)}")
        pad = self.tokenizer.pad_id
        left = self.prompt_len - b["prompt"].shape[1]
        right = lambda x, width, value: np.pad(x, ((0, 0), (0, width - x.shape[1])),
                                               constant_values=value)
        return {"prompt": np.pad(b["prompt"], ((0, 0), (left, 0)), constant_values=pad),
                "prompt_mask": np.pad(b["prompt_mask"], ((0, 0), (left, 0))),
                "target": right(b["target"], self.target_width, part.target_pad),
                "target_len": b["target_len"],
                "solution": right(b["solution"], self.solution_len, pad),
                "solution_mask": right(b["solution_mask"], self.solution_len, 0)}

    def _mix(self, seed: int, step: int, n: int, make) -> Dict[str, np.ndarray]:
        """n rows, n // k from each component (the first takes the remainder), with their
        component index in `difficulty`; `make(part, rows)` draws a component's rows."""
        k = len(self.parts)
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        parts = [self._fit(p, make(p, m)) for p, m in zip(self.parts, sizes) if m]
        out = {key: np.concatenate([b[key] for b in parts]) for key in BATCH_KEYS}
        out["difficulty"] = np.repeat(np.arange(k, dtype=np.int32), sizes)
        return out

    def make_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """RL's batch: component `train`'s, or with `train` -1 every component in equal shares;
        each row's component in `difficulty` (a mixed reward routes by it: rlpt.rewards.mixed)."""
        if self.train == -1:
            return self._mix(seed, step, batch_size, lambda p, m: p.make_batch(seed, step, m))
        part = self.parts[self.train]
        out = self._fit(part, part.make_batch(seed, step, batch_size))
        out["difficulty"] = np.full(batch_size, self.train, np.int32)
        return out

    def sft_batch(self, seed: int, step: int, batch_size: int) -> Dict[str, np.ndarray]:
        """The warm-up's batch: every component in equal shares (module doc)."""
        b = self._mix(seed, step, batch_size, lambda p, m: sft_batch(p, seed, step, m))
        return {k: v for k, v in b.items() if k != "difficulty"}

    def eval_set(self, n: int, seed: int = EVAL_SEED) -> Dict[str, np.ndarray]:
        """n held-out rows over the components, labelled by component (module doc); a
        component whose held-out set has no seed (word_arith: its first n questions) gives those
        for the default seed, and refuses another (the validation split's)."""
        def rows(p, m):
            if "seed" in inspect.signature(p.eval_set).parameters:
                return p.eval_set(m, seed)
            if seed != EVAL_SEED:
                raise ValueError(f"transfer: component {p.name} has one held-out set (no "
                                 "seeded evaluation stream): no validation split from it")
            return p.eval_set(m)
        return self._mix(seed, 0, n, rows)

    def reward(self, *args):
        return self.parts[0].reward(*args)

    def component_labels(self) -> List[str]:
        """The components' task names, by the index `difficulty` holds."""
        return list(self.labels)

    def __getattr__(self, attr):  # reference_reward, decode_prompt, decode_completion, ...
        if attr == "parts":
            raise AttributeError(attr)
        return getattr(self.parts[0], attr)

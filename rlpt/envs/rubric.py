"""Rubrics: weighted reward functions over finished episodes, evaluated in Python on the host.

A reward function names what it reads among `prompt`, `completion`, `answer`, `state`, `info`
(the `verifiers` convention; a `**kwargs` parameter receives all five) and returns one number:

    def correct(completion, answer) -> float: ...
    rubric = Rubric([correct, parser.format_reward], weights=[1.0, 0.2])

A *group* function (`group=True` in `RewardFunc`) sees the G completions of one prompt at once:
each named argument is then a list of G values, and it returns G numbers (e.g. a diversity
bonus, or a rank within the group).

An episode's reward is `sum_i w_i * r_i`. Every function runs behind a guard: one that raises,
returns a non-number, a bool-free non-finite value (NaN, inf) or the wrong number of values
scores 0 on the rows it failed, and the failure is counted (`rubric/<name>_errors`), never raised
into the trainer. The first error of each function is printed once as a warning. Metrics per
function: the mean raw value `rubric/<name>` and its error count.
"""
import dataclasses
import inspect
import math
import numbers
import warnings
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from rlpt.errors import UserError

ROLLOUT_FIELDS = ("prompt", "completion", "answer", "state", "info")


@dataclasses.dataclass(frozen=True)
class RewardFunc:
    """One weighted function; `name` defaults to the function's `__name__`."""
    fn: Callable
    weight: float = 1.0
    group: bool = False
    name: str = ""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__name__", "reward"))
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def reads(self) -> Tuple[str, ...]:
        """The rollout fields the function names (all five with `**kwargs`)."""
        params = inspect.signature(self.fn).parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in params):
            return ROLLOUT_FIELDS
        names = tuple(p.name for p in params
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        required = [p.name for p in params if p.default is p.empty
                    and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [n for n in required if n not in ROLLOUT_FIELDS]
        if unknown:
            raise UserError(f"rubric function {self.name!r}: parameter(s) {unknown} are not "
                            f"rollout fields; a reward function may name {list(ROLLOUT_FIELDS)}")
        return tuple(n for n in names if n in ROLLOUT_FIELDS)


def as_number(x) -> float:
    """`x` as a finite float, or ValueError (a bool counts as 0/1)."""
    if isinstance(x, np.ndarray) and x.shape == ():
        x = x.item()
    if not isinstance(x, numbers.Real):
        raise ValueError(f"returned {type(x).__name__} {x!r:.60}, not a number")
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"returned {v}")
    return v


class Rubric:
    """Weighted reward functions (module doc). `funcs` are callables or `RewardFunc`s;
    `weights` (optional) overrides the weights of plain callables, one per function."""

    def __init__(self, funcs: Sequence, weights: Sequence[float] = None):
        funcs = [f if isinstance(f, RewardFunc) else RewardFunc(f) for f in funcs]
        if weights is not None:
            if len(weights) != len(funcs):
                raise UserError(f"rubric: {len(funcs)} functions but {len(weights)} weights")
            funcs = [dataclasses.replace(f, weight=float(w)) for f, w in zip(funcs, weights)]
        names = [f.name for f in funcs]
        if len(set(names)) != len(names):
            raise UserError(f"rubric: function names must differ, got {names}")
        self.funcs: List[RewardFunc] = funcs
        self._reads = {f.name: f.reads for f in funcs}
        self._warned = set()

    def _failed(self, f: RewardFunc, e: Exception):
        if f.name not in self._warned:
            self._warned.add(f.name)
            warnings.warn(f"rubric function {f.name!r} failed ({type(e).__name__}: {e}); it "
                          f"scores 0 there, counted in rubric/{f.name}_errors; further cases "
                          "are not printed")

    def _row(self, f: RewardFunc, rollout: Dict) -> Tuple[float, int]:
        try:
            return as_number(f.fn(**{k: rollout[k] for k in self._reads[f.name]})), 0
        except Exception as e:   # a reward function must never stop training
            self._failed(f, e)
            return 0.0, 1

    def _group(self, f: RewardFunc, group: List[Dict]) -> Tuple[List[float], int]:
        try:
            out = f.fn(**{k: [r[k] for r in group] for k in self._reads[f.name]})
            out = list(out)
            if len(out) != len(group):
                raise ValueError(f"returned {len(out)} values for a group of {len(group)}")
            vals, bad = [], 0
            for x in out:
                try:
                    vals.append(as_number(x))
                except ValueError as e:
                    self._failed(f, e)
                    vals.append(0.0)
                    bad += 1
            return vals, bad
        except Exception as e:
            self._failed(f, e)
            return [0.0] * len(group), len(group)

    def score(self, rollouts: Sequence[Dict], group_size: int) -> Tuple[np.ndarray, Dict]:
        """Rewards float32 [N] of `rollouts` (dicts with the ROLLOUT_FIELDS; consecutive groups of
        `group_size` share a prompt) and the metrics `rubric/<name>`, `rubric/<name>_errors`."""
        n = len(rollouts)
        if n % group_size:
            raise ValueError(f"rubric: {n} rollouts is not a multiple of the group size "
                             f"{group_size}")
        total = np.zeros(n, np.float64)
        metrics = {}
        for f in self.funcs:
            vals, bad = np.zeros(n), 0
            if f.group:
                for g in range(0, n, group_size):
                    v, b = self._group(f, list(rollouts[g:g + group_size]))
                    vals[g:g + group_size], bad = v, bad + b
            else:
                for i, r in enumerate(rollouts):
                    vals[i], b = self._row(f, r)
                    bad += b
            total += f.weight * vals
            metrics[f"rubric/{f.name}"] = float(vals.mean()) if n else 0.0
            metrics[f"rubric/{f.name}_errors"] = float(bad)
        return total.astype(np.float32), metrics

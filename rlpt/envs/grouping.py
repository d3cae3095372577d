"""Host-side grouping of agentic rollouts for GRPO, and admission control for async rollouts.

- mmGRPO (arXiv 2508.04660) [code: dspy's `dspy.GRPO`]: for each module of an LM program, group
  j holds the j-th invocation of that module in each of the program's rollouts on one input, each
  carrying its rollout's final reward. Rollouts invoke a module a different number of times; the
  modes "truncate" (default: keep the first min-count invocations), "fill" (pad every rollout to
  the max count by repeating one of its own invocations) and "ragged" (group j holds only the
  rollouts with more than j invocations) reconcile them.
- Agent Lightning (arXiv 2508.03680) [code]: every LLM call of an agent rollout is a transition
  carrying the rollout's final reward; all transitions of all rollouts of one task form one GRPO
  group, normalised with the transition-level mean and std.
- ASearcher (arXiv 2508.07976) [code: AReaL `StalenessManager`]: with max off-policyness `eta`,
  weight version `v` and training batch `B`, a new rollout is admitted only while
  `accepted + running < (eta + v + 1) * B`, so no consumed sample is more than `eta` versions old.
"""
import dataclasses
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# ----------------------------------------------------------------------------- mmGRPO


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One module call in a group: its rollout, its index among that rollout's calls of the
    module (a filled slot repeats an earlier index), the rollout's final reward, the call."""
    rollout: int
    position: int
    reward: float
    call: Any


def mmgrpo_groups(invocations: Sequence[Sequence[Any]], rewards: Sequence[float],
                  mode: str = "truncate", fill_strategy: str = "last",
                  rng: Optional[random.Random] = None) -> List[List[Invocation]]:
    """Groups one module's calls across the rollouts of one input.

    invocations[r]: the module's calls in rollout r, in order; rewards[r]: rollout r's reward.
    fill_strategy (mode "fill"): "last" repeats the rollout's last call (dspy's default),
    "random" a uniformly drawn one of its calls (dspy's "randint"; pass `rng` to seed it).
    As in dspy, when some rollout never invoked the module there are no groups at all.
    """
    if len(invocations) != len(rewards):
        raise ValueError(f"{len(invocations)} invocation lists but {len(rewards)} rewards")
    if mode not in ("truncate", "fill", "ragged"):
        raise ValueError(f"unknown mmGRPO mode {mode!r}; known: 'truncate', 'fill', 'ragged'")
    if fill_strategy not in ("last", "random"):
        raise ValueError(f"unknown fill_strategy {fill_strategy!r}; known: 'last', 'random'")
    counts = [len(calls) for calls in invocations]
    if not counts or min(counts) == 0:
        return []
    rng = rng or random.Random(0)
    slots = []  # per rollout: the positions it contributes, in group order
    for n in counts:
        positions = list(range(min(counts) if mode == "truncate" else n))
        if mode == "fill":
            pick = (lambda: n - 1) if fill_strategy == "last" else (lambda: rng.randrange(n))
            positions += [pick() for _ in range(max(counts) - n)]
        slots.append(positions)
    return [[Invocation(r, slots[r][j], float(rewards[r]), invocations[r][slots[r][j]])
             for r in range(len(invocations)) if j < len(slots[r])]
            for j in range(max(len(s) for s in slots))]


def mmgrpo_module_groups(traces: Sequence[Sequence[Tuple[str, Any]]], rewards: Sequence[float],
                         **kwargs) -> Dict[str, List[List[Invocation]]]:
    """`mmgrpo_groups` for every module: traces[r] lists rollout r's `(module, call)` in order."""
    modules = sorted({m for trace in traces for m, _ in trace})
    return {m: mmgrpo_groups([[c for name, c in trace if name == m] for trace in traces],
                             rewards, **kwargs) for m in modules}


# ----------------------------------------------------------------------------- Agent Lightning


def transition_advantages(rewards: Sequence[float], num_transitions: Sequence[int],
                          task_ids: Optional[Sequence[Any]] = None, *, ddof: int = 1,
                          eps: float = 1e-6) -> np.ndarray:
    """Per-transition GRPO advantages, transitions in rollout order (rollout 0's first).

    Each of rollout r's `num_transitions[r]` transitions gets `rewards[r]`; the transitions of
    all rollouts sharing a task id (default: all one task) form a group, and each gets
    `(reward - mean) / (std + eps)` over its group's transitions, std with `ddof` (default 1,
    unbiased). A group of a single transition uses mean 0 and std 1, as verl does.
    """
    if len(rewards) != len(num_transitions):
        raise ValueError(f"{len(rewards)} rewards but {len(num_transitions)} transition counts")
    if any(n < 0 for n in num_transitions):
        raise ValueError(f"transition counts must be >= 0, got {list(num_transitions)}")
    task_ids = [0] * len(rewards) if task_ids is None else list(task_ids)
    if len(task_ids) != len(rewards):
        raise ValueError(f"{len(task_ids)} task ids but {len(rewards)} rewards")
    codes = {task: i for i, task in enumerate(dict.fromkeys(task_ids))}
    values = np.repeat(np.asarray(rewards, dtype=np.float64), num_transitions)
    groups = np.repeat([codes[t] for t in task_ids], num_transitions)
    out = np.empty_like(values)
    for g in np.unique(groups):
        sel = groups == g
        v = values[sel]
        mean, std = (0.0, 1.0) if v.size == 1 else (v.mean(), v.std(ddof=ddof))
        out[sel] = (v - mean) / (std + eps)
    return out


# ----------------------------------------------------------------------------- ASearcher


def staleness_limit(eta: int, batch_size: int, version: int) -> int:
    """Most samples (accepted + running) allowed at weight `version`: `(eta+version+1)*B`."""
    if eta < 0 or batch_size < 1 or version < 0:
        raise ValueError(f"need eta >= 0, batch_size >= 1, version >= 0; got {eta}, "
                         f"{batch_size}, {version}")
    return (eta + version + 1) * batch_size


def staleness_capacity(eta: int, batch_size: int, version: int, accepted: int, running: int,
                       max_concurrent: Optional[int] = None) -> int:
    """How many more rollouts may start now (never negative; AReaL's can be).

    `accepted` counts finished rollouts kept since training began, `running` those in flight;
    `max_concurrent` additionally caps `running` (AReaL's concurrency limit).
    """
    capacity = staleness_limit(eta, batch_size, version) - (accepted + running)
    if max_concurrent is not None:
        capacity = min(capacity, max_concurrent - running)
    return max(0, capacity)

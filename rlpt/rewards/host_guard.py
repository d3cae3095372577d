"""A guard around host (numpy / Python) reward functions: one bad row never stops a run.

`safe_host_reward(fn, on_error)` wraps `fn(*arrays) -> rewards [N]` (each array's leading axis
is the batch, as in `host_reward(tokens, mask, target, target_len)`) into
`guarded(*arrays) -> (rewards float32 [N], n_errors int)`:

- `fn` is first called on the whole batch; if it raises, it is called again row by row
  (every array argument sliced to `[i:i+1]`), and each row that raises scores `on_error`;
- a NaN or infinite reward scores `on_error` too;
- `n_errors` counts the rows scored `on_error` (raised or non-finite), for a metric.

Only `Exception` is caught (KeyboardInterrupt and SystemExit pass through). A result of the
wrong shape is a bug in `fn`, not in the model's output, and raises RewardShapeError (a
ValueError). `guarded.last_error` holds `repr` of the most recent exception (None if none), for a
log line.
"""
from typing import Callable, Optional, Tuple

import numpy as np


def _rows(args, n: int, i: int):
    """The arguments with every batch-leading array cut to row i (kept 2-d: `[i:i+1]`)."""
    return [a[i:i + 1] if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == n else a
            for a in args]


class RewardShapeError(ValueError):
    """The reward function returned the wrong number of rewards (a bug in it, not bad text)."""


def _as_rewards(out, n: int, name: str) -> np.ndarray:
    r = np.asarray(out, np.float32).reshape(-1) if np.ndim(out) else np.full(1, out, np.float32)
    if r.shape != (n,):
        raise RewardShapeError(f"host reward {name} returned shape {np.shape(out)} for {n} rows; "
                         f"expected ({n},)")
    return r


def safe_host_reward(fn: Callable[..., np.ndarray], on_error: float = 0.0
                     ) -> Callable[..., Tuple[np.ndarray, int]]:
    """`guarded(*arrays) -> (rewards float32 [N], n_errors)`; see the module docstring.

    Trainer use: `guarded = safe_host_reward(host_reward_fn(task), on_error=...)`, then in the
    split step `r, n_bad = guarded(tokens, mask, target, target_len)`, and in the fused step's
    `jax.pure_callback` a host function returning `(r, np.int32(n_bad))` with result shapes
    `(ShapeDtypeStruct((N,), float32), ShapeDtypeStruct((), int32))`; log `n_bad` as a metric
    (e.g. `reward_errors`).
    """
    name = getattr(fn, "__qualname__", repr(fn))

    def guarded(*args):
        args = [np.asarray(a) if hasattr(a, "__array__") else a for a in args]
        n = next(a.shape[0] for a in args if isinstance(a, np.ndarray) and a.ndim)
        raised = np.zeros(n, bool)
        try:
            rewards = _as_rewards(fn(*args), n, name)
        except RewardShapeError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the batch call: retry per row
            rewards = _by_row(args, n, raised, e)
        bad = raised | ~np.isfinite(rewards)
        rewards = np.where(bad, np.float32(on_error), rewards).astype(np.float32)
        return rewards, int(bad.sum())

    def _by_row(args, n, raised, first_error) -> np.ndarray:
        guarded.last_error = repr(first_error)
        out = np.zeros(n, np.float32)
        for i in range(n):
            try:
                out[i] = _as_rewards(fn(*_rows(args, n, i)), 1, name)[0]
            except RewardShapeError:
                raise
            except Exception as e:  # noqa: BLE001 - this row's text broke the reward
                raised[i] = True
                guarded.last_error = repr(e)
        return out

    guarded.last_error: Optional[str] = None
    guarded.__wrapped__ = fn
    return guarded

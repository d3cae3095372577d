"""The host boundary inside a compiled step: a Python reward called through `jax.pure_callback`,
behind `safe_host_reward` so that a row whose text breaks the reward never stops the run."""
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rlpt.rewards.host_guard import safe_host_reward
from rlpt.sharding import batch_sharding


def host_reward_callback(host_fn: Callable, on_error: float = 0.0, mesh=None):
    """Wraps a host (numpy / Python) reward so it can run inside the jitted step.

    `host_fn(tokens [N,T], mask [N,T], target [N,A], target_len [N]) -> rewards [N]` receives
    numpy arrays (it may decode them to strings and call any Python verifier). A row on which it
    raises, or whose reward is not finite, scores `on_error`; their number is the reward's
    auxiliary term `errors` (the step's metric `reward_errors`), and the first such error is
    printed once as a warning. The device waits for the host at this point; scripts/bench.py
    measures what the boundary costs.

    With a `mesh` whose batch axes span several devices the callback runs per batch shard
    (`jax.shard_map`): each device's rows are scored by the host of the process that owns that
    device, and no rows cross processes (without a mesh XLA gathers the batch to one device).
    """
    guarded = safe_host_reward(host_fn, on_error)
    warned = []

    def on_host(*arrays):
        r, n_bad = guarded(*[np.asarray(x) for x in arrays])
        if n_bad and not warned:
            warned.append(True)
            warnings.warn(f"host reward: {n_bad} row(s) scored {on_error} (raised or not "
                          f"finite; last error: {guarded.last_error}); counted in "
                          "reward_errors, further cases are not printed")
        return r, np.int32(n_bad)

    def call(tokens, mask, target, target_len):
        shapes = (jax.ShapeDtypeStruct((tokens.shape[0],), jnp.float32),
                  jax.ShapeDtypeStruct((), jnp.int32))
        return jax.pure_callback(on_host, shapes, tokens, mask, target, target_len)

    def reward(tokens, mask, target, target_len):
        args = (tokens, mask, target, target_len)
        if mesh is None or mesh.size == 1:
            r, n_bad = call(*args)
            return r, {"errors": n_bad}
        specs = tuple(batch_sharding(mesh, a.ndim, a.shape[0], what="host reward rows").spec
                      for a in args)
        def per_shard(*shard_args):
            r, n_bad = call(*shard_args)
            return r, n_bad.reshape(1)   # one count per shard, summed below
        r, n_bad = jax.shard_map(per_shard, mesh=mesh, in_specs=specs,
                                 out_specs=(specs[3], specs[3]), check_vma=False)(*args)
        return r, {"errors": n_bad.sum()}
    return reward

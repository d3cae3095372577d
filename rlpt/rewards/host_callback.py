"""The host boundary inside a compiled step: a Python reward called through `jax.pure_callback`."""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def host_reward_callback(host_fn: Callable):
    """Wraps a host (numpy / Python) reward so it can run inside the jitted step.

    `host_fn(tokens [N,T], mask [N,T], target [N,A], target_len [N]) -> rewards [N]` receives
    numpy arrays (it may decode them to strings and call any Python verifier). The device waits
    for the host at this point; scripts/bench.py measures what the boundary costs.
    """
    def reward(tokens, mask, target, target_len):
        shape = jax.ShapeDtypeStruct((tokens.shape[0],), jnp.float32)
        fn = lambda *a: np.asarray(host_fn(*[np.asarray(x) for x in a]), np.float32)
        return jax.pure_callback(fn, shape, tokens, mask, target, target_len), {}
    return reward

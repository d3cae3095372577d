"""The one training state of every loop (RL, SFT, preference, reward model).

    TrainState(params, opt_state, frozen, algo_state, step, rng)

`params` is everything the optimizer updates (a PPO value head is the subtree
`params["value_head"]`); `frozen` a dict of frozen models by role (`reference`, `teacher`,
`judge`, `generator`, ...), never updated; `algo_state` whatever an algorithm carries between
steps (a replay buffer), or None. The iteration's rng is `fold_in(rng, step)`, so a resumed run
draws what an uninterrupted one would.
"""
from typing import Any, Dict

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    frozen: Dict[str, Any]
    algo_state: Any
    step: jax.Array   # int32 scalar: updates (iterations) done
    rng: jax.Array    # base PRNG key; iteration rng = fold_in(rng, step)


def new_state(params, optimizer, seed: int, frozen=None, algo_state=None) -> TrainState:
    """A fresh state at step 0: `optimizer.init(params)`, the base key `PRNGKey(seed)`."""
    return TrainState(params=params, opt_state=optimizer.init(params), frozen=dict(frozen or {}),
                      algo_state=algo_state, step=jnp.zeros((), jnp.int32),
                      rng=jax.random.PRNGKey(seed))


def frozen_copy(params):
    """A frozen copy of `params` (a reference policy)."""
    return jax.tree_util.tree_map(jnp.copy, params)

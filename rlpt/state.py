"""The one training state of every loop (RL, SFT, preference, reward model).

    TrainState(params, opt_state, frozen, algo_state, step, rng)

`params` is everything the optimizer updates (a PPO value head is the subtree
`params["value_head"]`); `frozen` a dict of frozen models by role (`reference`, `teacher`,
`judge`, `generator`, ...), never updated; `algo_state` whatever an algorithm carries between
steps (a replay buffer), or None. The iteration's rng is `fold_in(rng, step)`, so a resumed run
draws what an uninterrupted one would.

With LoRA (rlpt.models.lora) `params` holds only the adapters (and any other trainable subtree,
a value head) and `frozen["base"]` the base weights; the policy runs on `model_params(params,
frozen)` (the adapters attached to the base), the reference policy is the base with the adapters
off (`reference_params`), and `trained_params` merges them into plain parameters.
"""
from typing import Any, Dict

import flax
import jax
import jax.numpy as jnp

from rlpt.models import lora


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    frozen: Dict[str, Any]
    algo_state: Any
    step: jax.Array   # int32 scalar: updates (iterations) done
    rng: jax.Array    # base PRNG key; iteration rng = fold_in(rng, step)


def new_state(params, optimizer, seed: int, frozen=None, algo_state=None) -> TrainState:
    """A fresh state at step 0: `params` in the optimizer's master dtype (`optimizer.master`,
    rlpt.optim: unchanged for float32), `optimizer.init(params)`, the base key `PRNGKey(seed)`."""
    params = optimizer.master(params)
    return TrainState(params=params, opt_state=optimizer.init(params), frozen=dict(frozen or {}),
                      algo_state=algo_state, step=jnp.zeros((), jnp.int32),
                      rng=jax.random.PRNGKey(seed))


def model_params(params, frozen):
    """The parameters the policy runs with: `params` attached to the frozen LoRA base
    `frozen["base"]` when the state has one (rlpt.models.lora.attach: no copy of the base),
    else `params` as they are. Inside a loss, differentiate with respect to `params` (the
    adapters) and call this inside: the gradient reaches only them."""
    if frozen and "base" in frozen:
        return lora.attach(frozen["base"], params)
    return params


def reference_params(frozen):
    """The reference policy: `frozen["reference"]` when the state has one (a full copy made by
    the KL piece, a Pre-DPO guide), else the LoRA base (the policy with its adapters off)."""
    return frozen["reference"] if "reference" in frozen else frozen["base"]


def trained_params(state: TrainState, lora_scale: float):
    """The trained policy as plain parameters (for the next phase, a frozen copy, an export):
    with LoRA the adapters merged into the base (`lora.merge`, float32), else `state.params`."""
    if "base" in state.frozen:
        return lora.merge(state.frozen["base"], state.params, lora_scale)
    return state.params


def frozen_copy(params):
    """A frozen copy of `params` (a reference policy)."""
    return jax.tree_util.tree_map(jnp.copy, params)

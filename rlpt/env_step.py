"""The RL step of a Python environment (rlpt.envs): the episodes are played on the host between
device programs (`rlpt.envs.multiturn.EnvRunner`), scored by the environment's rubric in Python,
and the update is the same compiled `rlpt.step.update_phase` as the fused and split steps'."""
import jax
import jax.numpy as jnp

from rlpt.algorithms.base import iteration_key
from rlpt.envs.multiturn import EnvRunner
from rlpt.errors import UserError
from rlpt.state import model_params
from rlpt.step import outcome_metrics, update_phase


def make_env_step(spec, runner: EnvRunner):
    """The RL step of a Python environment: `step(state, batch, hp) -> (state, metrics)` with
    the host rollout (`runner`), the rubric, then the compiled `rlpt.step.update_phase`."""
    if spec.hooks("before_rollout") or spec.hooks("reward_inputs"):
        raise UserError(f"algo.name={spec.algo.get('name')!r}: its rollout or reward-input "
                        "pieces act inside the fused step and do not apply to a Python "
                        "environment's rollout")
    update = jax.jit(lambda state, batch, out, r, hp: update_phase(spec, state, batch, out, r,
                                                                   hp), donate_argnums=(0,))
    params_of = jax.jit(model_params)

    def step(state, batch, hp):
        out, eps, m_env = runner.rollout(params_of(state.params, state.frozen), batch,
                                         iteration_key(state, 0))
        r, m_rubric = runner.env.rubric.score(eps, spec.G)
        r = jnp.asarray(r)
        state, metrics = update(state, {k: batch[k] for k in ("prompt", "prompt_mask")}, out,
                                r, hp)
        metrics.update(outcome_metrics(spec, r, {}, out))
        metrics.update(m_env)
        metrics.update(m_rubric)
        return state, metrics
    return step

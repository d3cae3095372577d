"""Shared by tests/test_sweep.py and tests/multidevice/test_sweep_8dev.py: a small sweep base
config, and a task whose reward is dense, so RL updates carry signal from the first step.

With the sparse addition reward a nano model after a few SFT steps scores 0 everywhere: every
GRPO advantage is 0, the gradient is rounding noise (~1e-9) and Adam turns that noise into
lr-sized updates, so two programs that round differently (a vmapped one and a single run) leave
each other within a few steps. A dense reward keeps the comparison about the code."""
import jax.numpy as jnp

from configs import grpo_arith
from rlpt import registry
from rlpt.tasks.synthetic import AdditionTask

DENSE_TASK = "sweep_test_dense_addition"


class DenseAddition(AdditionTask):
    """Addition prompts; reward = the share of completion tokens with an odd id."""

    name = DENSE_TASK

    def reward(self, completion, completion_mask, target, target_len):
        hits = ((completion % 2 == 1) * completion_mask).sum(1)
        return (hits / jnp.maximum(completion_mask.sum(1), 1)).astype(jnp.float32), {}


if DENSE_TASK not in registry.names("task"):
    registry.register("task", DENSE_TASK)(DenseAddition)


def small_config(sft_steps=4, rl_steps=6, dense=True):
    """configs/grpo_arith.py at size nano with few steps, small batches and evals."""
    c = grpo_arith.get_config("size=nano")
    if dense:
        c.task.name = DENSE_TASK
    c.sft.steps, c.sft.batch_size = sft_steps, 16
    c.rl.steps, c.rl.batch_size = rl_steps, 4
    c.sampling.num_samples = 4
    c.eval.every, c.eval.n_prompts, c.eval.n_samples, c.eval.ks = rl_steps // 2, 16, 4, (1, 4)
    c.log_every = c.ckpt_every = 2
    c.wandb.mode = "disabled"
    return c

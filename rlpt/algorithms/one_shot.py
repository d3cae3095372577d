"""1-shot RLVR (arXiv:2504.20571): one training example duplicated to the batch, and the
example selection by the variance of its training-accuracy history.

* Task `one_shot` (config: `task.name = "one_shot"`, `task.kwargs = dict(base=..., base_kwargs=...,
  pool_seed=0, pool_size=64, index=0)`): the pool is `base.make_batch(pool_seed, 0, pool_size)`;
  every training batch is pool row `index` repeated `batch_size` times. Evaluation, rewards and
  decoding are the base task's (its held-out eval set, not the single example).
* Selection: `accuracy_history` trains on the whole pool (every step's batch is the pool) and
  records each example's accuracy over its G samples per step -> `[E, S]`;
  `rlpt.losses.policy.rank_examples_by_accuracy_variance` ranks the examples (largest variance
  first). scripts/one_shot_rank.py runs both from a config.
"""
import jax
import numpy as np

from rlpt import registry


@registry.register("task", "one_shot")
class OneShotTask:
    name = "one_shot"

    def __init__(self, base: str = "addition", base_kwargs=None, pool_seed: int = 0,
                 pool_size: int = 64, index: int = 0):
        import rlpt.tasks.synthetic  # noqa: F401  (registration of the base tasks)
        if not 0 <= index < pool_size:
            raise ValueError(f"one_shot: index={index} is outside the pool of {pool_size}")
        self.base = registry.get("task", base)(**dict(base_kwargs or {}))
        self.pool_seed, self.pool_size, self.index = pool_seed, pool_size, index

    def pool(self):
        """The candidate examples (a batch of `pool_size` rows)."""
        return self.base.make_batch(self.pool_seed, 0, self.pool_size)

    def make_batch(self, seed: int, step: int, batch_size: int):
        """Pool row `index` repeated `batch_size` times (the same for every seed and step)."""
        del seed, step
        return {k: np.repeat(v[self.index:self.index + 1], batch_size, axis=0)
                for k, v in self.pool().items()}

    def __getattr__(self, attr):  # eval_set, reward, reference_reward, tokenizer, decode_*
        if attr == "base":
            raise AttributeError(attr)
        return getattr(self.base, attr)


def accuracy_history(rl, state, pool_batch, steps: int, step_fn=None):
    """Runs `steps` fused RL steps of `rl` (an RLStep built with `per_prompt_metrics=True`) with
    the whole pool as the batch; returns `(state, history [E, steps])`, the per-example accuracy
    (share of its G samples with reward > 0.5) at each step. `step_fn`: an already jitted
    `rl.fused` to reuse."""
    step = step_fn or jax.jit(rl.fused)
    cols = []
    for _ in range(steps):
        state, m = step(state, pool_batch)
        cols.append(np.asarray(m["accuracy_per_prompt"]))
    return state, np.stack(cols, axis=1)

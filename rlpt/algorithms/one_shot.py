"""1-shot RLVR (arXiv:2504.20571): GRPO with a k3 KL (beta 1e-3) and an entropy bonus (1e-3) at
temperature 0.6 (the algorithm is plain, rlpt.algorithms.simple), on one training example
duplicated to the batch (the `one_shot` task, rlpt.tasks.one_shot), and the example selection by
the variance of its training-accuracy history:

`accuracy_history` trains on the whole pool (every step's batch is the pool) and records each
example's accuracy over its G samples per step -> `[E, S]`;
`rlpt.losses.policy.rank_examples_by_accuracy_variance` ranks the examples (largest variance
first). scripts/one_shot_rank.py runs both from a config.
"""
import numpy as np


def accuracy_history(step_fn, state, pool_batch, hp, steps: int):
    """Runs `steps` fused RL steps `step_fn(state, batch, hp)` (built from a StepSpec with
    `per_prompt_metrics=True`) with the whole pool as the batch; returns `(state, history
    [E, steps])`, the per-example accuracy (share of its G samples with reward > 0.5) per step."""
    cols = []
    for _ in range(steps):
        state, m = step_fn(state, pool_batch, hp)
        cols.append(np.asarray(m["accuracy_per_prompt"]))
    return state, np.stack(cols, axis=1)

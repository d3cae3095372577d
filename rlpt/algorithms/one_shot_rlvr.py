"""1-shot RLVR (arXiv:2504.20571): GRPO with a k3 KL (beta 1e-3) and an entropy bonus (1e-3) at
temperature 0.6, on one training example duplicated to the batch (the `one_shot` task,
rlpt.tasks.one_shot), and the example selection by the variance of its training-accuracy history:

`accuracy_history` trains on the whole pool (every step's batch is the pool) and records each
example's accuracy over its G samples per step -> `[E, S]`; `rank_examples_by_accuracy_variance`
ranks the examples (largest variance first). scripts/one_shot_rank.py runs both from a config.
"""
import numpy as np

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.policy import clip_objective, resolve

DEFAULTS = dict(beta=1e-3, kl_estimator="k3", entropy_coef=1e-3, group_size=8, temperature=0.6,
                loss_agg="token_mean")


@registry.register("loss", "one_shot_rlvr")
def one_shot_rlvr_loss(batch, cfg):
    """1-shot RLVR (arXiv:2504.20571): GRPO with k3 KL beta=1e-3 and entropy bonus 1e-3
    (`batch["entropy"]` required), n=8 rollouts at temperature 0.6; token_mean aggregation (the
    verl default the authors ran; configurable via loss_agg)."""
    return clip_objective(batch, resolve(cfg, "one_shot_rlvr", DEFAULTS))


def rank_examples_by_accuracy_variance(history):
    """1-shot RLVR example selection: `history [E, S]` per-example training accuracy per step
    (NaN = not recorded). Returns example indices sorted by the variance (ddof=0) of their
    history, largest first (ties keep index order)."""
    var_E = np.nanvar(np.asarray(history, dtype=np.float64), axis=1)
    return np.argsort(-var_E, kind="stable")



def accuracy_history(step_fn, state, pool_batch, hp, steps: int):
    """Runs `steps` fused RL steps `step_fn(state, batch, hp)` (built from a StepSpec with
    `per_prompt_metrics=True`) with the whole pool as the batch; returns `(state, history
    [E, steps])`, the per-example accuracy (share of its G samples with reward > 0.5) per step."""
    cols = []
    for _ in range(steps):
        state, m = step_fn(state, pool_batch, hp)
        cols.append(np.asarray(m["accuracy_per_prompt"]))
    return state, np.stack(cols, axis=1)



ALGORITHM = registry.register("algorithm", "one_shot_rlvr")(Algorithm(
    "one_shot_rlvr", one_shot_rlvr_loss, defaults=DEFAULTS))

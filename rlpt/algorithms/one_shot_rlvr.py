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



def accuracy_history(step_fn, state, pool_batch, hp, steps: int, prompts_per_step: int = 0,
                     on_epoch=None):
    """Runs `steps` epochs over the pool with the RL step `step_fn(state, batch, hp)` (built from
    a StepSpec with `per_prompt_metrics=True`); returns `(state, history [E, steps])`, each
    example's accuracy (share of its G samples with reward > 0.5) per epoch. An epoch is one
    step on the whole pool, or with `prompts_per_step` = c (dividing the pool size E) E / c steps
    on consecutive slices of c examples, for a pool whose rollout does not fit in memory.
    `on_epoch(epoch, accuracies [E])`, when given, is called after each epoch (progress)."""
    E = len(pool_batch["prompt"])
    c = prompts_per_step or E
    if E % c:
        raise ValueError(f"prompts_per_step={c} must divide the pool size {E}")
    cols = []
    for _ in range(steps):
        accs = []
        for i in range(0, E, c):
            state, m = step_fn(state, {k: v[i:i + c] for k, v in pool_batch.items()}, hp)
            accs.append(np.asarray(m["accuracy_per_prompt"]))
        cols.append(np.concatenate(accs))
        if on_epoch is not None:
            on_epoch(len(cols) - 1, cols[-1])
    return state, np.stack(cols, axis=1)



ALGORITHM = registry.register("algorithm", "one_shot_rlvr")(Algorithm(
    "one_shot_rlvr", one_shot_rlvr_loss, defaults=DEFAULTS))

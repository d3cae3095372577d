"""The validation split: prompts for choosing a hyperparameter, apart from the held-out prompts
that report the result.

An experiment that picks each arm's learning rate from a grid (experiments/README.md, "Learning
rates") must not pick it on the prompts its table reports, or the picked rate's score is biased
upwards. With `eval.validation_prompts = n > 0` every evaluation of a run also evaluates n
validation prompts and writes that row with `phase="validation"` next to the `phase="eval"` row
(rlpt.train.run_rl, rlpt.sweep.run._rl), and the summary gains `validation_after_rl`.

The validation prompts are drawn from the task's own evaluation stream with another seed
(`eval_set(m, seed=EVAL_SEED + 1)`), and a drawn prompt equal to any held-out prompt is
dropped, so no prompt is in both splits. (Training prompts come from seeds below EVAL_SEED; on
small synthetic problem spaces they may repeat evaluation prompts, as the held-out ones may:
rlpt.tasks.synthetic.)

`eval.validation_prompts` is an optional key (read with `.get`), so run directories made before
it keep their config.json.
"""
import inspect
from typing import Dict, List, Tuple

import numpy as np

VALIDATION_SEED_OFFSET = 1
DRAW_FACTOR = 4   # rows drawn per validation prompt wanted, before held-out duplicates drop


def validation_set(task, n: int, held_out: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """n validation rows of `task`, none with a prompt equal to a row of `held_out`.

    Needs a task whose `eval_set(n, seed)` takes a seed (the synthetic tasks); others raise a
    ValueError naming `eval.validation_prompts`, as does a problem space too small to give n
    prompts outside the held-out ones."""
    eval_set = getattr(task, "eval_set", None)
    if eval_set is None or "seed" not in inspect.signature(eval_set).parameters:
        raise ValueError(f"eval.validation_prompts={n}: task {type(task).__name__} has no "
                         "seeded evaluation stream (eval_set(n, seed)) to draw a validation "
                         "split from; set it to 0")
    default = inspect.signature(eval_set).parameters["seed"].default
    drawn = eval_set(DRAW_FACTOR * n, seed=default + VALIDATION_SEED_OFFSET)
    held = {row.tobytes() for row in np.asarray(held_out["prompt"])}
    keep = [i for i, row in enumerate(np.asarray(drawn["prompt"])) if row.tobytes() not in held]
    if len(keep) < n:
        raise ValueError(f"eval.validation_prompts={n}: only {len(keep)} of {DRAW_FACTOR * n} "
                         f"drawn prompts of task {type(task).__name__} are not held-out prompts; "
                         "ask for fewer")
    idx = np.asarray(keep[:n])
    return {k: np.asarray(v)[idx] for k, v in drawn.items()}


def eval_splits(cfg, task, eval_batch) -> List[Tuple[str, Dict[str, np.ndarray]]]:
    """The evaluation's `(phase, batch)` pairs of a run: ("eval", the held-out batch), then
    ("validation", validation_set(...)) when `eval.validation_prompts` > 0."""
    n = int(cfg.eval.get("validation_prompts", 0))   # 0 when the key is absent
    return [("eval", eval_batch)] + (
        [("validation", validation_set(task, n, eval_batch))] if n else [])


def validation_summary(rows) -> Dict[str, Dict]:
    """`validation_after_sft` / `validation_after_rl` (the first and last validation rows of a
    run's metric rows) for its summary.json; {} without validation rows."""
    val = [r for r in rows if r["phase"] == "validation"]
    return {"validation_after_sft": val[0], "validation_after_rl": val[-1]} if val else {}

"""The evaluation before RL, shared between a sweep's points that would compute the same one.

Arms of a comparison differ in their RL settings; before the first RL step every arm of a seed
holds the same params (its SFT warm-up, itself shared: rlpt.sweep.sft_cache) and evaluates them
with the same program on the same draws. A pretrained base model without SFT holds the same
params in every seed as well, and when the config fixes the evaluation's rng for all runs
(`eval.seed`, rlpt.evaluation.rollout.eval_seed), every point of the sweep computes one and the
same evaluation: on SmolLM2 with pass@256 that is most of an hour each time. The first point
that computes it writes its rows (`phase` "eval" and "validation", step 0) to
`<sweep_dir>/eval_cache/<key>.json`; a later point with the same key writes those rows to its
log instead of evaluating (its summary names the source in `eval_before_reused_from`).

The key is a hash of everything the step-0 evaluation reads: the whole config (a task that
declares `eval_source`, like one_shot, as the task it is evaluated as) except what only acts
from the first RL step on (`algo`, `rl`, `optim`, logging, checkpointing, wandb, the
non-finite guard, the mesh, the processes), and except the run's seed when neither the params
(a checkpoint, no SFT steps: LoRA adapters start as an exact zero update) nor the evaluation's
rng (`eval.seed` set) depend on it. The evaluation settings (`eval_settings`, which also hold
the algorithm's self-correction prompt) are part of it. Points that train alone (rlpt.train)
use it; a vmapped group evaluates its runs in one program and does not.
"""
import hashlib
import json
import os
from typing import List, Optional, Sequence

from rlpt import registry
from rlpt.evaluation.rollout import eval_seed, eval_settings
from rlpt.io.workdir import write_json_atomic
from rlpt.sweep.sft_cache import source_name

AFTER_STEP_0 = ("algo", "rl", "optim", "log_every", "ckpt_every", "wandb", "nonfinite", "mesh",
                "distributed", "seed")


def eval_inputs(cfg) -> dict:
    """What the evaluation before RL depends on (module doc)."""
    out = {k: v for k, v in cfg.to_dict().items() if k not in AFTER_STEP_0}
    source = getattr(registry.get("task", cfg.task.name), "eval_source", None)
    if source is not None:   # a task evaluated as another (one_shot: its base task)
        name, kwargs = source(cfg.task.kwargs.to_dict())
        out["task"] = {"name": name, "kwargs": kwargs}
    out["eval_settings"] = eval_settings(cfg)._asdict()
    seed_free = bool(cfg.model.checkpoint) and not cfg.sft.steps
    out["seed"] = None if seed_free else int(cfg.seed)
    out["eval_seed"] = eval_seed(cfg)
    return out


def eval_key(cfg) -> str:
    text = json.dumps(eval_inputs(cfg), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class EvalCache:
    """One point's view (`point` with its `cfg`): `load()` -> the step-0 rows another point of
    `[sweep_dir, *more_dirs]` computed, else None; `save(rows)` after computing them."""

    def __init__(self, sweep_dir: str, point, more_dirs: Sequence[str] = ()):
        self.point, self.dirs = point, [sweep_dir, *more_dirs]
        self.name = f"{eval_key(point.cfg)}.json"
        self.path = os.path.join(sweep_dir, "eval_cache", self.name)
        self.source: Optional[str] = None   # the point whose evaluation was reused

    def load(self) -> Optional[List[dict]]:
        for d in self.dirs:
            path = os.path.join(d, "eval_cache", self.name)
            if os.path.exists(path):
                with open(path) as f:
                    got = json.load(f)
                self.source = source_name(self.dirs[0], (d, got["point"]))
                return got["rows"]
        return None

    def save(self, rows: List[dict]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        write_json_atomic(self.path, {"point": self.point.name, "rows": rows,
                                      "inputs": eval_inputs(self.point.cfg)})

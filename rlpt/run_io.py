"""What a run writes: resolved config, metrics JSONL, wandb (offline by default), orbax
checkpoints. Everything is keyed by (phase, step) so a resumed run continues the same files."""
import json
import os
from typing import Dict, List, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


def write_config(workdir: str, cfg) -> None:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))


class MetricsLog:
    """Append-only JSONL of {"phase", "step", ...}; on resume, rows after the restored step of the
    resumed phase are dropped (they are recomputed identically)."""

    def __init__(self, path: str):
        self.path = path

    def truncate_after(self, phase: str, step: int) -> None:
        if not os.path.exists(self.path):
            return
        rows = self.read(drop_partial_tail=True)
        keep = [r for r in rows if not (r["phase"] == phase and r["step"] > step)]
        with open(self.path, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")

    def write(self, rows: List[Dict]) -> None:
        with open(self.path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    def read(self, drop_partial_tail: bool = False) -> List[Dict]:
        """All rows; a malformed last line (cut by a crash mid-write) is dropped when resuming,
        any other malformed line is an error naming the file and line."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            lines = f.read().split("\n")
        out = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                if drop_partial_tail and not any(l.strip() for l in lines[lineno:]):
                    break
                raise ValueError(f"{self.path}:{lineno}: malformed metrics line ({e})") from e
        return out


def to_python(metrics: Dict) -> Dict:
    return {k: float(np.asarray(v)) for k, v in metrics.items()}


class WandbLogger:
    """wandb in offline mode unless configured online; never prompts for a login."""

    def __init__(self, cfg, workdir: str):
        self.run = None
        if cfg.wandb.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
        except ImportError:
            print("wandb is not installed; skipping wandb logging (pip install rlpt[wandb])")
            return
        self.run = wandb.init(project=cfg.wandb.project, name=cfg.wandb.name or None,
                              dir=workdir, mode=cfg.wandb.mode, config=cfg.to_dict(),
                              resume="allow", id=_run_id(workdir))

    def log(self, phase: str, rows: List[Dict]) -> None:
        if self.run is not None:
            for r in rows:
                self.run.log({f"{phase}/{k}": v for k, v in r.items() if k not in ("phase",)})

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()


def _run_id(workdir: str) -> str:
    path = os.path.join(workdir, "wandb_id.txt")
    if not os.path.exists(path):
        import uuid
        with open(path, "w") as f:
            f.write(uuid.uuid4().hex[:12])
    return open(path).read().strip()


class Checkpointer:
    """Orbax checkpoints of a TrainState under workdir/ckpt/<phase>/<step>."""

    def __init__(self, workdir: str, phase: str, max_to_keep: int = 2):
        self.mngr = ocp.CheckpointManager(
            os.path.abspath(os.path.join(workdir, "ckpt", phase)),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> Optional[int]:
        return self.mngr.latest_step()

    def save(self, step: int, state) -> None:
        self.mngr.save(step, args=ocp.args.StandardSave(state), force=True)
        self.mngr.wait_until_finished()

    def restore(self, state_like, step: Optional[int] = None):
        step = self.latest_step() if step is None else step
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
        return self.mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def cli_main(run_fn, argv=None):
    """`--config=<file>[:args] --workdir=DIR` (absl + ml_collections config flags), then
    `run_fn(config, workdir)`; orbax's per-save INFO logs are silenced."""
    from absl import app, flags
    from absl import logging as absl_logging
    from ml_collections import config_flags

    cfg_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                               lock_config=True)
    flags.DEFINE_string("workdir", None, "Where the run writes (and resumes from).")
    flags.mark_flags_as_required(["config", "workdir"])

    def _main(_):
        absl_logging.set_verbosity(absl_logging.WARNING)
        run_fn(cfg_flag.value, flags.FLAGS.workdir)

    app.run(_main, argv=argv)

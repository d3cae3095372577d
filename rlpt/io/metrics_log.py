"""Metrics of a run: `MetricsLog` (append-only JSONL keyed by (phase, step); on resume the
rows after the restored step are dropped, and a line torn by a crash is dropped with a warning),
`to_python` (device metrics -> floats) and `WandbLogger` (offline by default).
"""
import json
import os
import warnings
from typing import Dict, List

import numpy as np

from rlpt.errors import DiskFullError, is_disk_full
from rlpt.io.workdir import is_main, write_text_atomic


class MetricsLog:
    """Append-only JSONL of {"phase", "step", ...}; on resume, rows after the restored step of the
    resumed phase are dropped (they are recomputed identically)."""

    def __init__(self, path: str):
        self.path = path

    def truncate_after(self, phase: str, step: int) -> None:
        """Drops the rows of `phase` after `step` (rewriting the file atomically; process 0)."""
        if not os.path.exists(self.path) or not is_main():
            return
        rows = self.read()
        keep = [r for r in rows if not (r["phase"] == phase and r["step"] > step)]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in keep))

    def _repair_tail(self) -> None:
        """Before appending: a last line without its newline is completed if it is whole JSON,
        else (torn by a crash) cut off with a warning, so new rows never join it."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            start = data.rfind(b"\n") + 1
            try:
                json.loads(data[start:])
                f.write(b"\n")
            except ValueError:
                lineno = data.count(b"\n") + 1
                warnings.warn(f"{self.path}:{lineno}: dropping a torn last metrics line "
                              f"({data[start:start + 60]!r})")
                f.truncate(start)

    def write(self, rows: List[Dict]) -> None:
        """Appends rows (process 0 only: with several processes the others write nothing)."""
        if not is_main():
            return
        self._repair_tail()
        try:
            with open(self.path, "a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        except OSError as e:   # a torn last line is cut off on the next start (_repair_tail)
            if is_disk_full(e):
                raise DiskFullError(f"disk full: could not append to {self.path}") from e
            raise

    def read(self, drop_partial_tail: bool = True) -> List[Dict]:
        """All rows. A malformed last line (torn by a crash mid-write) is dropped with a warning
        naming file:line (an error instead with `drop_partial_tail=False`); a malformed line
        anywhere else is a ValueError naming the file and line."""
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
                    warnings.warn(f"{self.path}:{lineno}: dropping a torn last metrics line "
                                  f"({line[:60]!r}: {e})")
                    break
                raise ValueError(f"{self.path}:{lineno}: malformed metrics line ({e})") from e
        return out


def to_python(metrics: Dict) -> Dict:
    return {k: float(np.asarray(v)) for k, v in metrics.items()}


class WandbLogger:
    """wandb in offline mode unless configured online; never prompts for a login."""

    def __init__(self, cfg, workdir: str):
        self.run = None
        if cfg.wandb.mode == "disabled" or not is_main():
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

"""What a run writes: resolved config, metrics JSONL, wandb (offline by default), orbax
checkpoints. Everything is keyed by (phase, step) so a resumed run continues the same files.

Safety for reruns and crashes: `WorkdirLock` (one live run per workdir), `check_config_change`
(a resumed run refuses a changed config unless allowed), `write_json_atomic` (summary files are
always whole, valid JSON), `MetricsLog` (a line torn by a crash is dropped with a warning) and
`Checkpointer.restore` (a corrupt latest checkpoint falls back to the previous one).
"""
import contextlib
import json
import math
import os
import re
import shutil
import sys
import socket
import tempfile
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rlpt.distributed import is_main


def _write_text_atomic(path: str, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, fsyncs it, then renames it over `path`:
    a reader (or a crash) sees the old file or the new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _finite_or_none(obj: Any) -> Any:
    """`obj` with NaN/inf floats as None and numpy scalars / 0-d arrays as Python numbers."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)) and np.ndim(obj) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: str, obj: Any, indent: int = 2) -> None:
    """Writes `obj` as strict JSON to `path` atomically (temporary file + `os.replace`).

    NaN and +-inf become `null` (strict JSON has no spelling for them), numpy scalars become
    Python numbers. The trainer writes its summary with `write_json_atomic(os.path.join(workdir,
    "summary.json"), summary)` instead of `json.dump`.
    """
    _write_text_atomic(path, json.dumps(_finite_or_none(obj), indent=indent, allow_nan=False)
                       + "\n")


def write_config(workdir: str, cfg) -> None:
    """Writes the resolved config to workdir/config.json (atomically)."""
    _write_text_atomic(os.path.join(workdir, "config.json"),
                       cfg.to_json_best_effort(indent=2, sort_keys=True))


@contextlib.contextmanager
def claimed_workdir(workdir: str, cfg, allow_config_change: bool = False):
    """The start of every run: creates `workdir`, holds its lock (WorkdirLock) for the block,
    refuses a config that differs from the workdir's config.json unless `allow_config_change`
    (check_config_change; `distributed.*` may change: a resume on another cluster layout), and
    writes the new config.json. With several processes only process 0 locks and writes."""
    cfg_json = cfg.to_json_best_effort(indent=2, sort_keys=True)
    if not is_main():   # process 0 locks and writes; the others only refuse a changed config
        if not allow_config_change:
            check_config_change(workdir, cfg_json, allow=False, ignore=("distributed",))
        yield
        return
    os.makedirs(workdir, exist_ok=True)
    with WorkdirLock(workdir):
        check_config_change(workdir, cfg_json, allow=allow_config_change, ignore=("distributed",))
        write_config(workdir, cfg)
        yield


def _flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    """{dotted key path: leaf value} of nested dicts (a non-dict value is a leaf)."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out = {}
    for k, v in obj.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


_MISSING = "<absent>"


def config_diff(old: Dict, new: Dict, ignore: Sequence[str] = ()) -> Dict[str, Tuple]:
    """{dotted key: (old value, new value)} for every leaf that differs (`<absent>` for a key on
    one side only); keys equal to or under an `ignore` prefix are left out."""
    a, b = _flatten(old), _flatten(new)
    skip = lambda k: any(k == p or k.startswith(p + ".") for p in ignore)
    return {k: (a.get(k, _MISSING), b.get(k, _MISSING)) for k in sorted(set(a) | set(b))
            if not skip(k) and a.get(k, _MISSING) != b.get(k, _MISSING)}


def check_config_change(workdir: str, cfg_json_str: str, allow: bool,
                        ignore: Sequence[str] = ()) -> Dict[str, Tuple]:
    """Guards a resumed run against a changed config; call it before `write_config`:

        check_config_change(workdir, cfg.to_json_best_effort(indent=2, sort_keys=True),
                            allow=cfg.allow_config_change)   # e.g. --config.allow_config_change
        write_config(workdir, cfg)

    When workdir/config.json exists and differs from `cfg_json_str` (leaves compared by dotted
    key path, `ignore` prefixes skipped), raises ValueError listing each changed key as
    `key: old -> new`; with `allow=True` it instead copies the old file to
    workdir/config.<YYYYmmdd-HHMMSS>.json, so the caller's overwrite loses nothing. An unreadable
    old config.json counts as changed. Returns the changes ({} for a new or unchanged run).
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return {}
    new = json.loads(cfg_json_str)
    try:
        with open(path) as f:
            old = json.load(f)
        changes = config_diff(old, new, ignore)
    except (OSError, ValueError) as e:
        changes = {"<config.json>": (f"unreadable ({e})", "the new config")}
    if not changes:
        return {}
    if not allow:
        lines = "\n".join(f"  {k}: {o!r} -> {n!r}" for k, (o, n) in changes.items())
        raise ValueError(
            f"{path}: this workdir was started with a different config; changed keys:\n{lines}\n"
            "Use a new workdir, or allow the change (the old config is kept beside it).")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup, i = os.path.join(workdir, f"config.{stamp}.json"), 1
    while os.path.exists(backup):
        backup, i = os.path.join(workdir, f"config.{stamp}-{i}.json"), i + 1
    shutil.copy2(path, backup)
    return changes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WorkdirLock:
    """`with WorkdirLock(workdir):` around a whole run: one live run per workdir.

    Creates workdir/.lock holding `{"pid", "host", "time"}` (created exclusively). If the lock is
    held by a live process on this host, raises RuntimeError naming its pid; if its pid is dead
    (a crashed run) or the file is unreadable, takes it over with a warning naming the old pid.
    A lock from another host cannot be checked and is refused (delete the file if that run is
    gone). The lock is removed on exit if it is still ours. With several hosts, only process 0
    should take it:

        with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
            ...
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, ".lock")
        self.me = {"pid": os.getpid(), "host": socket.gethostname()}

    def _read(self) -> Optional[Dict]:
        try:
            with open(self.path) as f:
                held = json.load(f)
            return held if isinstance(held, dict) and isinstance(held.get("pid"), int) else None
        except (OSError, ValueError):
            return None

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(dict(self.me, time=time.strftime("%Y-%m-%d %H:%M:%S")), f)
        return True

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if self._create():
            return self
        held = self._read()
        if held is not None and held.get("host") != self.me["host"]:
            raise RuntimeError(f"{self.path}: workdir is locked by pid {held['pid']} on host "
                               f"{held.get('host')!r}; if that run is gone, delete the lock file")
        if held is not None and _pid_alive(held["pid"]):
            raise RuntimeError(f"{self.path}: workdir is in use by a live process, pid "
                               f"{held['pid']} (started {held.get('time')}); wait for it, stop "
                               "it, or use another workdir")
        old = f"pid {held['pid']}" if held is not None else "an unreadable lock file"
        warnings.warn(f"{self.path}: taking over a stale lock left by {old} (not running)")
        os.remove(self.path)
        if not self._create():  # another process took it over first
            raise RuntimeError(f"{self.path}: workdir was locked by another process "
                               f"(pid {(self._read() or {}).get('pid')}) while taking it over")
        return self

    def __exit__(self, *exc):
        held = self._read()
        if held is not None and held.get("pid") == self.me["pid"] \
                and held.get("host") == self.me["host"]:
            os.remove(self.path)
        return False


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
        _write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in keep))

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
        with open(self.path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

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


class NonFiniteStateError(RuntimeError):
    """A state with NaN or infinite values was about to be checkpointed."""


@jax.jit
def _all_finite(leaves):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree) -> bool:
    """Whether every floating-point leaf of `tree` is finite: on the host (numpy) when this
    process holds every leaf whole, which the checkpoint's save reads anyway, else one small
    compiled reduction (a state sharded over several processes)."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return all(bool(np.isfinite(np.asarray(x)).all()) for x in leaves)
    return bool(_all_finite(leaves))


class Checkpointer:
    """Orbax checkpoints of a TrainState under workdir/ckpt/<phase>/<step>."""

    def __init__(self, workdir: str, phase: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.path.join(workdir, "ckpt", phase))
        self.max_to_keep = max_to_keep
        self.mngr = self._manager()

    def _manager(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=self.max_to_keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> Optional[int]:
        return self.mngr.latest_step()

    def save(self, step: int, state) -> None:
        """Saves `state` as `step`; a state with a non-finite float is refused (NonFiniteState
        error), so the newest checkpoint on disk is always one a run can continue from."""
        if not all_finite(state):
            raise NonFiniteStateError(f"{self.directory}: refusing to checkpoint step {step}: "
                                      "the state holds NaN or infinite values")
        self.mngr.save(step, args=ocp.args.StandardSave(state), force=True)
        self.mngr.wait_until_finished()

    def restore(self, state_like, step: Optional[int] = None):
        """The state saved at `step`, or (None) at the newest step that reads back.

        A corrupt newest checkpoint (unreadable files, garbled metadata) is not fatal: the
        previous steps are tried in turn; the first that restores is returned, with a warning
        naming the corrupt and the restored steps, and each corrupt newer step is moved to
        ckpt/<phase>_corrupt/ (so that step can be saved again). If no step restores, raises
        RuntimeError naming each step's error. An explicit `step` is restored or raises.
        """
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
        load = lambda s: self.mngr.restore(s, args=ocp.args.StandardRestore(abstract))
        if step is not None:
            return load(step)
        errors = []
        for s in sorted(self.mngr.all_steps(), reverse=True):
            try:
                state = load(s)
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds
                errors.append((s, f"{type(e).__name__}: {str(e)[:200]}"))
                self._reset()  # a failed restore can leave the manager confused
                continue
            if errors:
                moved = [self._move_aside(bad) for bad, _ in errors]
                warnings.warn(
                    f"{self.directory}: checkpoint step {errors[0][0]} is corrupt "
                    f"({errors[0][1]}); restored step {s} instead. Corrupt steps "
                    f"{[bad for bad, _ in errors]} moved to {moved}")
            return state
        detail = "; ".join(f"step {s}: {e}" for s, e in errors) or "no checkpoints"
        raise RuntimeError(f"{self.directory}: no checkpoint could be restored ({detail})")

    def _move_aside(self, step: int) -> str:
        """Moves the step's directory to ckpt/<phase>_corrupt/<step>[.<n>]; returns the path."""
        dest_dir = self.directory + "_corrupt"
        os.makedirs(dest_dir, exist_ok=True)
        dest, n = os.path.join(dest_dir, str(step)), 1
        while os.path.exists(dest):
            dest, n = os.path.join(dest_dir, f"{step}.{n}"), n + 1
        shutil.move(os.path.join(self.directory, str(step)), dest)
        self._reset()
        return dest

    def _reset(self) -> None:
        """Closes the orbax manager and opens a fresh one (re-reading the steps on disk)."""
        try:
            self.mngr.close()
        except Exception:  # noqa: BLE001 - closing a manager that failed must not mask that
            pass
        self.mngr = self._manager()


def cli_main(run_fn, argv=None):
    """`--config=<file>[:args] --workdir=DIR` (absl + ml_collections config flags), then
    `run_fn(config, workdir)`; orbax's per-save INFO logs are silenced."""
    from absl import app, flags
    from absl import logging as absl_logging
    from ml_collections import config_flags

    cfg_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                               lock_config=True)
    flags.DEFINE_string("workdir", None, "Where the run writes (and resumes from).")
    flags.DEFINE_bool("allow_config_change", False, "Resume in a workdir whose config.json "
                      "differs from this config (the old one is kept as config.<time>.json).")
    flags.mark_flags_as_required(["config", "workdir"])

    def _main(_):
        absl_logging.set_verbosity(absl_logging.WARNING)
        kw = {"allow_config_change": True} if flags.FLAGS.allow_config_change else {}
        run_fn(cfg_flag.value, flags.FLAGS.workdir, **kw)

    def parse(args):  # absl's parser, but a bad override is one line, not a traceback
        try:
            return app.parse_flags_with_usage(args)
        except (AttributeError, KeyError) as e:
            sys.exit(unknown_key_message(args, e))

    app.run(_main, argv=argv, flags_parser=parse)


def unknown_key_message(argv, error) -> str:
    """One line for an override of a key the config does not have (ml_collections raises an
    AttributeError / KeyError whose text names the missing part and maybe a suggestion)."""
    text = str(error).replace("\\n", "\n").replace("\\'", "'")
    first, _, hint = text.partition("\n")
    missing = set(re.findall(r"[A-Za-z0-9_]+", first))
    keys = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    bad = [k for k in keys if missing & set(k.split("."))]
    hint = hint.strip().strip("'\"")
    return (f"error: unknown config key {bad[0] if bad else first.strip(chr(39))}"
            + (f" ({hint})" if hint else ""))

"""A run's workdir, safe under reruns and crashes: `WorkdirLock` (one live run per workdir),
`check_config_change` (a resumed run refuses a changed config unless allowed; `config_diff`
names the changed keys), `write_json_atomic` / `write_text_atomic` (files are always whole; JSON
strict), `write_config` and `claimed_workdir` (the start of every run: lock, config check,
config.json).
"""
import contextlib
import json
import math
import os
import shutil
import socket
import tempfile
import time
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from rlpt.errors import DiskFullError, UserError, is_disk_full


def is_main() -> bool:
    """rlpt.distributed.is_main, imported when first asked: reading a run's files (the
    experiments' analyses) needs no jax."""
    from rlpt.distributed import is_main as main
    return main()


def write_text_atomic(path: str, text: str) -> None:
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
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if is_disk_full(e):
            raise DiskFullError(f"disk full: could not write {path}") from e
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
    write_text_atomic(path, json.dumps(_finite_or_none(obj), indent=indent, allow_nan=False)
                       + "\n")


def write_config(workdir: str, cfg) -> None:
    """Writes the resolved config to workdir/config.json (atomically)."""
    write_text_atomic(os.path.join(workdir, "config.json"),
                       cfg.to_json_best_effort(indent=2, sort_keys=True))


@contextlib.contextmanager
def claimed_workdir(workdir: str, cfg, allow_config_change: bool = False, defaults=None):
    """The start of every run: creates `workdir`, holds its lock (WorkdirLock) for the block,
    refuses a config that differs from the workdir's config.json unless `allow_config_change`
    (check_config_change; `distributed.*` may change: a resume on another cluster layout; a key
    the old config.json lacks is no change when `cfg` has it at its value in the code's
    `defaults` config), and writes the new config.json. A start that fails with a UserError
    before writing metrics, checkpoints or a summary leaves the workdir as it was (its
    config.json restored or removed; a workdir it created removed when empty), so the corrected
    command is not refused as a changed config. With several processes only process 0 locks and
    writes."""
    cfg_json = cfg.to_json_best_effort(indent=2, sort_keys=True)
    defaults_json = defaults.to_json_best_effort() if defaults is not None else ""
    check = lambda allow: check_config_change(workdir, cfg_json, allow=allow,
                                              ignore=("distributed",), defaults_json=defaults_json)
    if not is_main():   # process 0 locks and writes; the others only refuse a changed config
        if not allow_config_change:
            check(False)
        yield
        return
    created = not os.path.exists(workdir)
    os.makedirs(workdir, exist_ok=True)
    try:
        with WorkdirLock(workdir):
            check(allow_config_change)
            config_path = os.path.join(workdir, "config.json")
            old_config = open(config_path).read() if os.path.exists(config_path) else None
            write_config(workdir, cfg)
            try:
                yield
            except UserError:   # a start that failed before writing anything leaves no trace
                if _nothing_written(workdir):
                    if old_config is None:
                        os.remove(config_path)
                    else:
                        write_text_atomic(config_path, old_config)
                raise
    finally:
        if created and os.path.isdir(workdir) and not os.listdir(workdir):
            os.rmdir(workdir)


def finished_summary(workdir: str, cfg, defaults=None) -> Optional[Dict]:
    """The summary.json of a run that finished in `workdir` with this config (the same as its
    config.json up to `distributed.*` and keys added at their defaults), else None: a rerun of
    a finished run changes nothing."""
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        return None
    try:
        check_config_change(workdir, cfg.to_json_best_effort(), allow=False,
                            ignore=("distributed",),
                            defaults_json=defaults.to_json_best_effort() if defaults else "")
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):   # a changed config (ConfigChangedError) or a torn summary
        return None


def _nothing_written(workdir: str) -> bool:
    """Whether a run wrote nothing in `workdir` besides config.json (and its lock): no metrics,
    no checkpoint, no summary."""
    return not any(os.path.exists(os.path.join(workdir, n))
                   for n in ("metrics.jsonl", "ckpt", "summary.json"))


def _flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    """{dotted key path: leaf value} of nested dicts (a non-dict value is a leaf)."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out = {}
    for k, v in obj.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


_MISSING = "<absent>"


def config_diff(old: Dict, new: Dict, ignore: Sequence[str] = (),
                defaults: Optional[Dict] = None) -> Dict[str, Tuple]:
    """{dotted key: (old value, new value)} for every leaf that differs (`<absent>` for a key on
    one side only); keys equal to or under an `ignore` prefix are left out, and so is a key the
    old config lacks whose new value is its value in `defaults` (the code's default config):
    a field that newer code added at its default is not a change."""
    a, b = _flatten(old), _flatten(new)
    d = _flatten(defaults) if defaults is not None else {}
    skip = lambda k: any(k == p or k.startswith(p + ".") for p in ignore) or (
        k not in a and k in d and d[k] == b.get(k, _MISSING))
    return {k: (a.get(k, _MISSING), b.get(k, _MISSING)) for k in sorted(set(a) | set(b))
            if not skip(k) and a.get(k, _MISSING) != b.get(k, _MISSING)}


class ConfigChangedError(UserError):
    """A resumed run's config differs from its workdir's config.json; `.changes` as
    config_diff returns them."""

    def __init__(self, message: str, changes: Dict[str, Tuple]):
        super().__init__(message)
        self.changes = changes


def listed_changes(changes: Dict[str, Tuple]) -> str:
    """`key: old -> new; ...` of config_diff's changes, on one line."""
    return "; ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in changes.items())


def check_config_change(workdir: str, cfg_json_str: str, allow: bool,
                        ignore: Sequence[str] = (), defaults_json: str = "") -> Dict[str, Tuple]:
    """Guards a resumed run against a changed config; call it before `write_config`:

        check_config_change(workdir, cfg.to_json_best_effort(indent=2, sort_keys=True),
                            allow=cfg.allow_config_change)   # e.g. --config.allow_config_change
        write_config(workdir, cfg)

    When workdir/config.json exists and differs from `cfg_json_str` (leaves compared by dotted
    key path, `ignore` prefixes skipped, a key added at its value in `defaults_json` skipped:
    config_diff), raises a one-line ConfigChangedError listing each changed key as
    `key: old -> new`; with `allow=True` it instead copies the old file to
    workdir/config.<YYYYmmdd-HHMMSS>.json, so the caller's overwrite loses nothing. An
    unreadable old config.json counts as changed. Returns the changes ({} for a new or unchanged run).
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return {}
    new = json.loads(cfg_json_str)
    try:
        with open(path) as f:
            old = json.load(f)
        changes = config_diff(old, new, ignore,
                              json.loads(defaults_json) if defaults_json else None)
    except (OSError, ValueError) as e:
        changes = {"<config.json>": (f"unreadable ({e})", "the new config")}
    if not changes:
        return {}
    if not allow:
        raise ConfigChangedError(
            f"{path}: this workdir was started with a different config (changed keys: "
            f"{listed_changes(changes)}). Use a new workdir, or rerun with --allow_config_change "
            "(the old config is kept beside it as config.<time>.json)", changes)
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

"""Run I/O under reruns and crashes: config changes, the workdir lock, torn metrics lines,
corrupt checkpoints, atomic JSON."""
import glob
import json
import os
import shutil
import subprocess
import sys
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from rlpt.errors import UserError
from rlpt.io.checkpoints import Checkpointer
from rlpt.io.metrics_log import MetricsLog
from rlpt.io.workdir import WorkdirLock, check_config_change, config_diff, write_json_atomic

# ----------------------------------------------------------------------------- config change

OLD = {"seed": 0, "optim": {"lr": 1e-3, "b1": 0.9}, "rl": {"steps": 10}}


def _write_old(workdir, cfg=OLD):
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(cfg, f)


def test_new_or_unchanged_config_passes(tmp_path):
    assert check_config_change(str(tmp_path / "fresh"), json.dumps(OLD), allow=False) == {}
    _write_old(str(tmp_path))
    assert check_config_change(str(tmp_path), json.dumps(OLD, indent=2), allow=False) == {}


def test_changed_config_is_refused_with_a_dotted_diff(tmp_path):
    _write_old(str(tmp_path))
    new = {"seed": 0, "optim": {"lr": 3e-4, "b1": 0.9}, "rl": {"steps": 10, "extra": 1}}
    with pytest.raises(ValueError) as e:
        check_config_change(str(tmp_path), json.dumps(new), allow=False)
    msg = str(e.value)
    assert "config.json" in msg and "optim.lr: 0.001 -> 0.0003" in msg
    assert "rl.extra: '<absent>' -> 1" in msg and "seed" not in msg
    assert os.listdir(tmp_path) == ["config.json"]  # nothing written when refused


def test_allowed_change_keeps_the_old_config(tmp_path):
    _write_old(str(tmp_path))
    new = dict(OLD, seed=1)
    changes = check_config_change(str(tmp_path), json.dumps(new), allow=True)
    assert changes == {"seed": (0, 1)}
    backups = glob.glob(str(tmp_path / "config.*.json"))
    assert len(backups) == 1 and json.load(open(backups[0])) == OLD
    check_config_change(str(tmp_path), json.dumps(dict(OLD, seed=2)), allow=True)
    assert len(glob.glob(str(tmp_path / "config.*.json"))) == 2  # same second: no overwrite


def test_a_key_newer_code_added_at_its_default_is_not_a_change(tmp_path):
    """A workdir's config.json from before a field existed resumes when the field is at the
    code's default, and is refused when it is not (issue 29)."""
    from configs import grpo_arith
    from rlpt.config import base_config, validate
    from rlpt.io.workdir import claimed_workdir
    cfg = validate(grpo_arith.get_config("size=nano,quick=1"))
    workdir = str(tmp_path)
    with claimed_workdir(workdir, cfg):
        pass
    old = json.load(open(tmp_path / "config.json"))
    del old["model"]["checkpoint_format"], old["nonfinite"]     # added by newer code
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"changed keys: model\.checkpoint_format: '<absent>' "
                                         r"-> ''.*--allow_config_change"):
        check_config_change(workdir, cfg.to_json_best_effort(), allow=False)  # no defaults
    defaults = base_config(cfg.algo.name)
    with claimed_workdir(workdir, cfg, defaults=defaults):
        pass
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg.nonfinite.stop_after = 9                                  # not the default (5)
    with pytest.raises(ValueError, match=r"^[^\n]*nonfinite\.stop_after: '<absent>' -> 9[^\n]*$"):
        with claimed_workdir(workdir, cfg, defaults=defaults):
            pass


def test_ignored_keys_and_unreadable_old_config(tmp_path):
    assert config_diff(OLD, dict(OLD, rl={"steps": 20}), ignore=["rl.steps"]) == {}
    (tmp_path / "config.json").write_text("{torn")
    with pytest.raises(ValueError, match="unreadable"):
        check_config_change(str(tmp_path), json.dumps(OLD), allow=False)


# ----------------------------------------------------------------------------- workdir lock

_HOLDER = """
import sys, time
from rlpt.io.workdir import WorkdirLock
with WorkdirLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    workdir = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, workdir], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RuntimeError, match=rf"live process, pid {holder.pid}"):
            with WorkdirLock(workdir):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(os.path.join(workdir, ".lock"))  # killed: the lock is left behind
    with pytest.warns(UserWarning, match=rf"stale lock left by pid {holder.pid}"):
        with WorkdirLock(workdir):
            held = json.load(open(os.path.join(workdir, ".lock")))
            assert held["pid"] == os.getpid()
    assert not os.path.exists(os.path.join(workdir, ".lock"))


def test_lock_released_on_error_and_garbled_lock_taken_over(tmp_path):
    with pytest.raises(KeyError):
        with WorkdirLock(str(tmp_path)):
            raise KeyError("run failed")
    assert not os.path.exists(tmp_path / ".lock")
    (tmp_path / ".lock").write_text("")
    with pytest.warns(UserWarning, match="unreadable lock file"):
        with WorkdirLock(str(tmp_path)):
            pass


# ----------------------------------------------------------------------------- metrics log

def _rows(n):
    return [{"phase": "rl", "step": i, "loss": 0.5} for i in range(1, n + 1)]


def test_torn_last_line_is_dropped_with_a_warning_every_read(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    log.write(_rows(3))
    with open(log.path, "a") as f:
        f.write('{"phase": "rl", "st')
    for _ in range(2):  # a rerun reads it again: still a warning, not an error
        with pytest.warns(UserWarning, match=r"metrics.jsonl:4: dropping a torn last"):
            assert log.read() == _rows(3)
    with pytest.raises(ValueError, match=r"metrics.jsonl:4"):
        log.read(drop_partial_tail=False)


def test_appending_after_a_torn_line_cuts_it_first(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    log.write(_rows(2))
    with open(log.path, "a") as f:
        f.write('{"phase": "rl", "st')
    with pytest.warns(UserWarning, match=r"metrics.jsonl:3"):
        log.write(_rows(4)[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert log.read() == _rows(4)
    with open(log.path, "a") as f:  # a whole last row missing only its newline is kept
        f.write(json.dumps({"phase": "rl", "step": 5}))
    log.write([{"phase": "rl", "step": 6}])
    assert [r["step"] for r in log.read()] == [1, 2, 3, 4, 5, 6]


def test_malformed_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"phase": "rl", "step": 1}\nnot json\n{"phase": "rl", "step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: malformed"):
        MetricsLog(str(path)).read()


def test_truncate_after_keeps_other_phases(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    log.write(_rows(4) + [{"phase": "eval", "step": 4}])
    log.truncate_after("rl", 2)
    assert [(r["phase"], r["step"]) for r in log.read()] == [("rl", 1), ("rl", 2), ("eval", 4)]


# ----------------------------------------------------------------------------- checkpoints

LIKE = {"w": jnp.zeros(3), "n": {"count": jnp.zeros((), jnp.int32)}}


def _saved(workdir, steps=(1, 2)):
    ckpt = Checkpointer(workdir, "rl", max_to_keep=3)
    for s in steps:
        ckpt.save(s, {"w": jnp.full(3, float(s)), "n": {"count": jnp.array(s, jnp.int32)}})
    return Checkpointer(workdir, "rl", max_to_keep=3)  # a fresh manager, as a rerun has


def _garble_metadata(step_dir):
    for f in glob.glob(os.path.join(step_dir, "**", "_METADATA"), recursive=True):
        open(f, "w").write("{garbled")


def _zero_data(step_dir):
    for f in glob.glob(os.path.join(step_dir, "**", "d", "*"), recursive=True):
        open(f, "wb").write(b"\0" * 7)


def _truncate_data(step_dir):
    for f in glob.glob(os.path.join(step_dir, "**", "d", "*"), recursive=True):
        open(f, "r+b").truncate(3)


def _remove_items(step_dir):
    shutil.rmtree(os.path.join(step_dir, "default"))


@pytest.mark.parametrize("corrupt", [_garble_metadata, _zero_data, _truncate_data, _remove_items])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_step(tmp_path, corrupt):
    ckpt = _saved(str(tmp_path))
    corrupt(os.path.join(ckpt.directory, "2"))
    with pytest.warns(UserWarning, match=r"step 2 is corrupt .*restored step 1 instead"):
        state = ckpt.restore(LIKE)
    np.testing.assert_array_equal(state["w"], [1.0, 1.0, 1.0])
    assert int(state["n"]["count"]) == 1
    assert ckpt.latest_step() == 1 and os.path.isdir(ckpt.directory + "_corrupt/2")
    ckpt.save(2, {"w": jnp.full(3, 7.0), "n": {"count": jnp.array(2, jnp.int32)}})  # resaves
    np.testing.assert_array_equal(ckpt.restore(LIKE)["w"], [7.0, 7.0, 7.0])


def test_no_readable_checkpoint_is_an_error_naming_the_steps(tmp_path):
    ckpt = _saved(str(tmp_path))
    for s in ("1", "2"):
        _garble_metadata(os.path.join(ckpt.directory, s))
    with pytest.raises(UserError, match=r"no checkpoint could be restored.*step 2.*step 1"):
        ckpt.restore(LIKE)
    assert sorted(os.listdir(ckpt.directory)) == ["1", "2"]  # nothing moved


def test_intact_checkpoint_restores_without_warning(tmp_path):
    ckpt = _saved(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert int(ckpt.restore(LIKE)["n"]["count"]) == 2
    assert int(ckpt.restore(LIKE, step=1)["n"]["count"]) == 1


# ----------------------------------------------------------------------------- atomic JSON

def test_write_json_atomic_is_strict_json_with_null_for_non_finite(tmp_path):
    path = str(tmp_path / "summary.json")
    obj = {"acc": np.float32(0.5), "loss": float("nan"), "kl": [np.inf, -np.inf, 1],
           "n": np.int64(3), "nested": {"x": (1.0, float("nan"))}}
    write_json_atomic(path, obj)
    text = open(path).read()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"acc": 0.5, "loss": None, "kl": [None, None, 1], "n": 3,
                                "nested": {"x": [1.0, None]}}
    assert os.listdir(tmp_path) == ["summary.json"]  # no temporary file left behind


def test_write_json_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = str(tmp_path / "summary.json")
    write_json_atomic(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.load(open(path)) == {"ok": 1} and os.listdir(tmp_path) == ["summary.json"]

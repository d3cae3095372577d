"""Errors a user causes (data, files, faults) fail early and reach the terminal as one line
(issue 29): rlpt.errors.UserError, rlpt.io.cli.user_errors."""
import glob
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import pytest

from configs import dpo_arith
from conftest import REPO_ROOT
from rlpt.errors import DiskFullError, UserError, is_disk_full
from rlpt.io.checkpoints import Checkpointer, last_complete_checkpoint
from rlpt.io.cli import user_errors
from rlpt.io.metrics_log import MetricsLog
from rlpt.io.workdir import write_json_atomic

GOOD = json.dumps({"prompt": "1+1=", "chosen": "2", "rejected": "3"})
BAD_ROWS = {   # (the file's lines, what the one-line error says)
    "missing field": ([GOOD, GOOD, json.dumps({"prompt": "1+2=", "chosen": "3"})],
                      r"line 3: missing field 'rejected'"),
    "wrong type": ([GOOD, json.dumps({"prompt": "1+2=", "chosen": 3, "rejected": "4"}), GOOD],
                   r"line 2: field 'chosen' must be a string"),
    "malformed JSON": ([GOOD, '{"prompt": "1+2=", "chosen": "3",', GOOD],
                       r"line 2: malformed JSON"),
    "empty file": ([], r"no preference pairs in file"),
    "untokenizable": ([GOOD, json.dumps({"prompt": "1+2=", "chosen": "\u00e9", "rejected": "4"})],
                      r"line 2: cannot tokenize 'chosen'"),
}


def _pairs_file(tmp_path, lines, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _pref_config(path, sft_steps=500):
    cfg = dpo_arith.get_config(f"algo=dpo,size=nano,quick=1,source={path}")
    cfg.pref.jsonl_eval_pairs = 1
    cfg.sft.steps = sft_steps     # a bad row must fail before these train
    return cfg


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_preference_data_errors_fail_before_the_sft_phase_trains(tmp_path, case):
    from rlpt.preference.train import run
    lines, message = BAD_ROWS[case]
    path = _pairs_file(tmp_path, lines)
    workdir = str(tmp_path / "run")
    with pytest.raises(UserError, match=message):
        run(_pref_config(path), workdir)
    assert not os.path.exists(os.path.join(workdir, "ckpt")), "the SFT phase trained first"
    rows = MetricsLog(os.path.join(workdir, "metrics.jsonl")).read()
    assert rows == []


def test_bad_utf8_in_preference_data_fails_before_training(tmp_path):
    from rlpt.preference.train import run
    path = tmp_path / "pairs.jsonl"
    path.write_bytes((GOOD + "\n").encode() * 2 + b'{"prompt": "\xff\xfe"}\n')
    with pytest.raises(UserError, match=r"pairs\.jsonl, line 3: invalid UTF-8"):
        run(_pref_config(str(path)), str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "ckpt")


def _one_line_run(args, **kw):
    env = dict(os.environ, RLPT_NO_PROGRESS="1", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=300, **kw)
    return out.returncode, out.stderr.strip().splitlines()


def test_a_data_error_from_the_preference_trainer_is_one_line_with_status_2(tmp_path):
    path = _pairs_file(tmp_path, BAD_ROWS["missing field"][0])
    code, err = _one_line_run(["rlpt.preference.train",
                               f"--config=configs/dpo_arith.py:algo=dpo,size=nano,quick=1,"
                               f"source={path}", "--config.pref.jsonl_eval_pairs=1",
                               f"--workdir={tmp_path / 'run'}"])
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("rlpt.preference.train: error: ") and "line 3" in err[0], err


# ------------------------------------------------------------------------- checkpoints

def _saved(workdir, steps=(1, 2)):
    ckpt = Checkpointer(workdir, "rl", max_to_keep=3)
    for s in steps:
        ckpt.save(s, {"w": jnp.full(3, float(s))})
    return Checkpointer(workdir, "rl", max_to_keep=3)


def test_a_workdir_whose_checkpoints_are_all_truncated_names_the_directory(tmp_path, capfd):
    ckpt = _saved(str(tmp_path))
    for f in glob.glob(os.path.join(ckpt.directory, "**", "*"), recursive=True):
        if os.path.isfile(f):
            open(f, "r+b").truncate(os.path.getsize(f) // 2)
    with pytest.raises(UserError, match=r"ckpt/rl: no checkpoint could be restored .*step 2.*"
                                        r"step 1.*move that directory aside"):
        Checkpointer(str(tmp_path), "rl", max_to_keep=3).restore({"w": jnp.zeros(3)})
    assert "Failed to json parse" not in capfd.readouterr().err   # orbax's logs: quiet


# ----------------------------------------------------------------------------- a full disk

ORBAX_FULL = ValueError('RESOURCE_EXHAUSTED: Error writing local file "/w/ckpt/rl/6.orbax-'
                        'checkpoint-tmp/default/_sharding": Failed to write 3445 bytes to file 11: '
                        "No space left on device [os_error_code='28']")


def test_a_full_disk_during_a_checkpoint_is_one_error_and_the_last_checkpoint_stays(
        tmp_path, monkeypatch, capsys):
    ckpt = _saved(str(tmp_path))

    def save_until_full(step, args, force):
        os.makedirs(os.path.join(ckpt.directory, f"{step}.orbax-checkpoint-tmp"))
        raise ORBAX_FULL
    monkeypatch.setattr(ckpt.mngr, "save", save_until_full)
    with pytest.raises(SystemExit) as exit_info, user_errors("rlpt.train", str(tmp_path)):
        ckpt.save(3, {"w": jnp.zeros(3)})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlpt.train: error: disk full: could not write "
                                               "checkpoint step 3 under "), err
    last = os.path.join(ckpt.directory, "2")
    assert f"the last complete checkpoint, {last}, is intact" in err[0]
    assert sorted(os.listdir(ckpt.directory)) == ["1", "2"]   # the partial save removed
    assert last_complete_checkpoint(str(tmp_path)) == last


def test_a_full_disk_on_a_python_write_names_the_file(tmp_path, monkeypatch, capsys):
    import errno
    import rlpt.io.workdir as workdir_module

    def full_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(workdir_module.os, "fsync", full_fsync)
    path = str(tmp_path / "summary.json")
    with pytest.raises(DiskFullError, match=r"could not write .*summary\.json"):
        write_json_atomic(path, {"a": 1})
    assert os.listdir(tmp_path) == []                 # no temporary file left
    with pytest.raises(SystemExit), user_errors("rlpt.train", str(tmp_path)):
        write_json_atomic(path, {"a": 1})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "summary.json" in err[0] and "no checkpoint was complete" in err[0]


def test_is_disk_full_and_other_errors_keep_their_traceback(capsys):
    assert is_disk_full(ORBAX_FULL) and is_disk_full(OSError(28, "x"))
    assert not is_disk_full(ValueError("shape mismatch")) and not is_disk_full(OSError(2, "x"))
    with pytest.raises(KeyError), user_errors("rlpt.train"):
        raise KeyError("a bug")                     # not the user's: the traceback stays
    with user_errors("rlpt.train"):
        pass                                        # a clean exit is left alone
    assert capsys.readouterr().err == ""


def test_a_config_value_error_from_the_trainer_is_one_line_with_status_2(tmp_path):
    code, err = _one_line_run(["rlpt.train", "--config=configs/grpo_arith.py:size=nano,quick=1",
                               "--config.optim.b2=1.5", f"--workdir={tmp_path / 'run'}"])
    assert code == 2 and err == ["rlpt.train: error: config optim.b2: 1.5 must be in [0, 1)"], err



def test_export_errors_are_one_line_with_status_2(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code, err = _one_line_run(["rlpt.export", f"--workdir={run}", f"--out={tmp_path / 'out'}"])
    assert code == 2 and len(err) == 1 and err[0].startswith("rlpt.export: error: "), err
    assert "config.json" in err[0]
    (run / "config.json").write_text(json.dumps({"model": {"preset": "nano"}}))
    code, err = _one_line_run(["rlpt.export", f"--workdir={run}", f"--out={run}"])
    assert code == 2 and len(err) == 1 and "--workdir" in err[0], err
    assert json.loads((run / "config.json").read_text()) == {"model": {"preset": "nano"}}

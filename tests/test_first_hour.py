"""A new user's first hour (issue 30), end to end through `python -m rlpt.train`: a start that
fails leaves the workdir as it was; Ctrl-C says which checkpoint the rerun resumes from, and
the rerun says it resumed; rerunning a finished run says so and changes nothing."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT

QUICK = ["-m", "rlpt.train", "--config=configs/grpo_arith.py:size=nano,quick=1",
         "--config.wandb.mode=disabled"]


def _env():
    return dict(os.environ, RLPT_NO_PROGRESS="1", JAX_PLATFORMS="cpu")


def _run(args, **kw):
    out = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=_env(), capture_output=True,
                         text=True, timeout=300, **kw)
    return out.returncode, out.stdout, out.stderr


def test_a_failed_start_leaves_the_workdir_as_it_was(tmp_path):
    workdir = tmp_path / "run"
    bad = [*QUICK, f"--config.model.checkpoint={tmp_path / 'nope.gguf'}", f"--workdir={workdir}"]
    code, _, err = _run(bad)
    assert code == 2 and err.strip().count("\n") == 0 and "nope.gguf" in err, err
    assert not workdir.exists()          # no config.json to refuse the corrected command with
    workdir.mkdir()
    (workdir / "config.json").write_text('{"seed": 7}')
    code, _, err = _run(bad)
    assert code == 2 and (workdir / "config.json").read_text() == '{"seed": 7}', err


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_interrupt_resume_and_a_finished_rerun(tmp_path):
    workdir = tmp_path / "run"
    cmd = [*QUICK, "--config.rl.steps=60", f"--workdir={workdir}"]
    proc = subprocess.Popen([sys.executable, *cmd], cwd=REPO_ROOT, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    rl = workdir / "ckpt" / "rl"
    deadline = time.time() + 240
    while not (rl.is_dir() and any(n.isdigit() for n in os.listdir(rl))):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlpt.train: interrupted; the last complete "
                                                   f"checkpoint is {rl}/"), err
    step = int(lines[0].split(f"{rl}/")[1].split(":")[0])

    code, out, err = _run(cmd)
    assert code == 0, err
    assert f"resuming rl from its checkpoint at step {step} ({rl})" in out
    summary = (workdir / "summary.json").read_bytes()
    assert json.loads(summary)["rl_steps"] == 60

    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()}
    code, out, err = _run(cmd)
    assert code == 0 and "this run has already finished" in out, out + err
    assert (workdir / "summary.json").read_bytes() == summary
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()} == before

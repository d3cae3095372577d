"""rlpt.launch stops its processes: when one fails the others are stopped at once (not left in
the distributed start-up timeout), a SIGTERM/SIGINT to the launcher is forwarded to their
process groups (grandchildren included) and reaped, a process that ignores SIGTERM is SIGKILLed
after the grace period, and a successful run still returns 0 with prefixed output. The
processes are tiny `python -c` scripts that record their pids in files."""
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, within
from rlpt.launch import launch

# argv: the pid directory and one role per process (comma-separated). A process records its pid
# in <id>.pid (and a grandchild's in <id>.child, first), atomically.
CHILD = r"""
import os, signal, subprocess, sys, time
d, roles = sys.argv[1], sys.argv[2].split(",")
i = int(os.environ["RLPT_PROCESS_ID"])
role = roles[i]
def record(name, pid):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write(str(pid))
    os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
if role == "ok":
    print("hello from", i, "of", os.environ["RLPT_NUM_PROCESSES"])
    sys.exit(0)
if role == "fail":  # once the others have recorded their pids
    while sum(n.endswith(".pid") for n in os.listdir(d)) < len(roles) - 1:
        time.sleep(0.02)
    sys.exit(3)
if role == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if role == "grandchild":
    g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    record(f"{i}.child", g.pid)
record(f"{i}.pid", os.getpid())
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody reaps yet (e.g. an orphan under a container's init) is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _dead_within(pids, seconds=5.0) -> list:
    """The pids still alive after up to `seconds` of polling."""
    deadline = time.monotonic() + seconds
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _pids(d, suffixes=(".pid", ".child")) -> list:
    return [int(open(os.path.join(d, n)).read()) for n in sorted(os.listdir(d))
            if n.endswith(suffixes)]


@pytest.fixture
def piddir(tmp_path):
    """A directory for the pid files; whatever they name is SIGKILLed at the end (the old
    launcher left such processes running for 300 s)."""
    yield str(tmp_path)
    for pid in _pids(str(tmp_path)):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _command(piddir, roles):
    return [sys.executable, "-c", CHILD, piddir, ",".join(roles)]


def test_one_failure_stops_the_others_at_once(piddir):
    """Process 0 exits 3 while process 1 (and its grandchild) sleep: launch returns 3 at once
    and the sleepers are gone."""
    t0 = time.monotonic()
    code = within(20, launch, _command(piddir, ["fail", "grandchild"]), 2, 0, 0, None,
                  io.StringIO())
    assert code == 3
    assert time.monotonic() - t0 < 10
    assert len(_pids(piddir)) == 2
    assert _dead_within(_pids(piddir)) == []


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_launcher_is_forwarded_and_its_processes_reaped(piddir, sig, status):
    """A SIGTERM / SIGINT to `python -m rlpt.launch` stops and reaps its processes (and their
    groups), then the launcher exits with 128 + the signal number and says so on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "rlpt.launch", "--processes=2", "--",
                             *_command(piddir, ["sleep", "grandchild"])],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while len([n for n in os.listdir(piddir) if n.endswith(".pid")]) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert f"rlpt.launch: {signal.Signals(sig).name}: stopped 2 processes" in err
    assert len(_pids(piddir)) == 3
    assert _dead_within(_pids(piddir)) == []


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(piddir):
    """A process that ignores SIGTERM is SIGKILLed once the grace period (1 s) is over."""
    t0 = time.monotonic()
    code = within(20, launch, _command(piddir, ["ignore_term", "fail"]), 2, 0, 0, None,
                  io.StringIO(), 1.0)
    assert code == 3
    assert time.monotonic() - t0 < 10
    assert len(_pids(piddir)) == 1
    assert _dead_within(_pids(piddir)) == []


def test_success_returns_0_with_prefixed_output(piddir):
    out = io.StringIO()
    assert within(20, launch, _command(piddir, ["ok", "ok"]), 2, 0, 0, None, out) == 0
    assert sorted(out.getvalue().splitlines()) == ["[0] hello from 0 of 2",
                                                   "[1] hello from 1 of 2"]

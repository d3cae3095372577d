"""Runs tests/multidevice in a separate process with 8 fake CPU devices."""
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, fake_devices_env

from rlpt import sharding


def _multidevice(marker: str):
    """tests/multidevice's tests selected by `marker` (-m), in a process with 8 fake devices."""
    env = fake_devices_env(8)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "0", "-m", marker,   # one process: the session has 2 workers
                           os.path.join(REPO_ROOT, "tests", "multidevice")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout


def test_multidevice_suite():
    _multidevice("not slow")


@pytest.mark.slow
def test_multidevice_slow_suite():
    """The multi-device tests marked slow (`pytest -m slow` reaches them only through here:
    tests/multidevice is not collected in this process)."""
    _multidevice("slow")


def test_mesh_minus_one_on_one_device():
    mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
    assert mesh.shape["data"] >= 1
    with pytest.raises(ValueError, match="at most one axis"):
        sharding.make_mesh({"data": -1, "tensor": -1})

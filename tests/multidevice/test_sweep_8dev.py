"""A sweep's run axis over 8 fake CPU devices (one run per device) equals the same 8 runs in one
program on one device (run in its own process, see tests/test_sharding.py)."""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sweep_helpers import small_config  # noqa: E402
from rlpt.io.metrics_log import MetricsLog  # noqa: E402
from rlpt.sweep.points import axis, group_points, points_to_configs, product, seeds  # noqa: E402
from rlpt.sweep.run import run_group, run_mesh  # noqa: E402


@pytest.mark.slow
def test_eight_runs_on_eight_devices_equal_one_device(tmp_path):
    """8 points (4 seeds x 2 learning rates; SFT, RL, evaluation): metrics on a run mesh of 8
    devices equal those on 1 device to rtol 1e-5 (atol 1e-7 for near-zero values): not bitwise,
    since a device holding 8 runs reduces over 8x the rows (docs/sweeps.md). ~50 s, hence slow:
    tests/test_sharding.py::test_multidevice_slow_suite (`pytest -m slow tests/test_sharding.py`)."""
    assert jax.device_count() == 8
    assert run_mesh(8).devices.size == 8 and run_mesh(6).devices.size == 6
    assert run_mesh(5).devices.size == 5 and run_mesh(7, jax.devices()[:4]).devices.size == 1
    points = product(axis("config.optim.lr", [5e-4, 2e-3]), seeds(4))
    [group] = group_points(points_to_configs(small_config(sft_steps=4, rl_steps=6), points))
    rows = {}
    for n_dev in (8, 1):
        wd = str(tmp_path / f"dev{n_dev}")
        run_group(group, wd, tqdm(disable=True), devices=jax.devices()[:n_dev])
        rows[n_dev] = [MetricsLog(os.path.join(wd, "points", p.name, "metrics.jsonl")).read()
                       for p in group.points]
    for p, got, want in zip(group.points, rows[8], rows[1]):
        assert [(r["phase"], r["step"]) for r in got] == [(r["phase"], r["step"]) for r in want]
        assert len([r for r in got if r["phase"] == "rl"]) == 6
        for a, b in zip(got, want):
            for k in a:
                if k not in ("phase", "step"):
                    # the sampler/trainer mismatch is a difference of two O(1) log-probs:
                    # rounding-sized in float32 (~1e-7), so held to an absolute 1e-5
                    atol = 1e-5 if k.startswith("mismatch_") else 1e-7
                    np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=atol,
                                               err_msg=f"{p.name} {a['phase']} {a['step']} {k}")
    assert len({r[0]["loss"] for r in rows[8]}) == 4  # 4 seeds: 4 different first SFT losses

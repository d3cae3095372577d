"""The trainer end to end: config errors before compilation, outputs, and exact resume after a
real SIGKILL of the training process."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO_ROOT

QUICK = ["--config=configs/grpo_arith.py:size=nano,quick=1", "--config.wandb.mode=disabled",
         "--config.eval.n_prompts=8", "--config.rl.batch_size=4", "--config.sampling.num_samples=4",
         "--config.sft.batch_size=8"]


def _train(workdir, extra=(), **kw):
    env = dict(os.environ, RLPT_NO_PROGRESS="1", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "rlpt.train", f"--workdir={workdir}", *QUICK, *extra]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def _final_params(workdir, step):
    path = os.path.join(workdir, "ckpt", "rl", str(step), "default")
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))["params"]


@pytest.mark.parametrize("args,needle", [
    (["--config.optim.lrr=1"], "lrr"),
    (["--config.sampling.temperature=0"], "sampling.temperature"),
    (["--config.algo.name=nope"], "algo.name"),
    (["--config.rl.minibatches=3"], "rl.minibatches"),
    (["--config.eval.ks=(1,64)"], "eval.ks"),
    (["--config.model.preset=huge"], "model.preset"),
])
def test_bad_config_fails_before_compiling(tmp_path, args, needle):
    t0 = time.time()
    proc = _train(str(tmp_path / "w"), args)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert needle in out, out[-2000:]
    assert not os.path.exists(tmp_path / "w" / "ckpt")
    assert time.time() - t0 < 60


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_outputs_and_exact_resume_after_sigkill(tmp_path):
    # Uninterrupted reference run.
    ref = str(tmp_path / "ref")
    out, _ = _train(ref).communicate(timeout=600)
    assert "after RL" in out, out[-3000:]
    for name in ("config.json", "metrics.jsonl", "summary.json", "results.md", "curves.png"):
        assert os.path.exists(os.path.join(ref, name)), name
    cfg = json.load(open(os.path.join(ref, "config.json")))
    assert cfg["algo"]["name"] == "grpo" and cfg["algo"]["group_size"] == 4

    # Same command, killed with SIGKILL once the first RL checkpoint exists, then restarted.
    run = str(tmp_path / "run")
    proc = _train(run)
    first = os.path.join(run, "ckpt", "rl", "3")
    deadline = time.time() + 600
    while not os.path.exists(first) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; slow it down"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(run, "summary.json"))
    out, _ = _train(run).communicate(timeout=600)
    assert "after RL" in out, out[-3000:]

    a, b = _final_params(ref, 6), _final_params(run, 6)
    import jax
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise
    rows = lambda w: [json.loads(l) for l in open(os.path.join(w, "metrics.jsonl"))]
    assert rows(ref) == rows(run)

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


def test_a_resume_at_the_last_step_evaluates_it_when_the_kill_came_before_its_evaluation(
        tmp_path):
    """rlpt.loop.run_phase restarted from the last step's checkpoint with no evaluation of that
    step in the log (killed between the checkpoint and the evaluation) evaluates it, even when
    eval.every does not divide the step (evaluations only before and after: eval.every huge);
    with the evaluation in the log it does not evaluate again."""
    import types
    import ml_collections
    from rlpt.io.metrics_log import MetricsLog
    from rlpt.loop import Runs, run_phase
    cfg = ml_collections.ConfigDict(dict(log_every=1, ckpt_every=10, eval=dict(every=10 ** 9),
                                         nonfinite=dict(stop_after=5, reward_value=0.0,
                                                        on_reward="replace")))
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    log.write([{"phase": "eval", "step": 0, "greedy_acc": 0.1},
               {"phase": "rl", "step": 40, "loss": 0.5}])
    state = types.SimpleNamespace(step=np.asarray(40))
    calls = []

    def on_eval(step, st, which):
        calls.append((step, which))
        log.write([{"phase": "eval", "step": step, "greedy_acc": 0.9}])
    never = lambda *a: pytest.fail("no step is left to run")
    for _ in range(2):
        run_phase("rl", state, never, never, 40, 1, cfg, None, Runs([log]), on_eval=on_eval)
    assert calls == [(40, [0])]

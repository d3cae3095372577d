"""Golden metrics: 20 fused RL steps of the default recipe and of five zoo algorithms give the
metrics recorded from the code before the plug-in redesign (commit 9e9d290), to 1e-5.

Each run: `configs/<file>:quick=1` (nano model to keep the suite fast), 10 SFT steps, 20 RL steps
logged every step, through `rlpt.train.run` (the whole trainer path: config -> state -> step).
Record anew (only after an intended numerical change, and say so in the commit) with
`RLPT_RECORD_GOLDEN=1 python -m pytest tests/test_golden.py`.
"""
import json
import os

import numpy as np
import pytest

from conftest import REPO_ROOT

GOLDEN_DIR = os.path.join(REPO_ROOT, "tests", "golden")
CASES = [("grpo_arith.py", ""), ("algos.py", "algo=ppo,"), ("algos.py", "algo=dapo,"),
         ("algos.py", "algo=kdrl,"), ("algos.py", "algo=mgrpo,"), ("algos.py", "algo=relift,")]


def _config(file, arg):
    import importlib.util
    spec = importlib.util.spec_from_file_location("cfgmod", os.path.join(REPO_ROOT, "configs", file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = mod.get_config(arg + "quick=1,size=nano")
    c.rl.steps, c.rl.batch_size, c.sampling.num_samples = 20, 8, 4
    c.sft.steps, c.sft.batch_size = 150, 32
    c.task.kwargs.max_digits = 1  # 1-digit addition: nonzero rewards after a short SFT
    c.eval.every, c.eval.n_prompts = 20, 8
    c.log_every, c.ckpt_every = 1, 20
    c.wandb.mode = "disabled"
    return c


def _rl_rows(workdir):
    rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl")) if l.strip()]
    return [r for r in rows if r["phase"] in ("rl", "eval")]


@pytest.mark.parametrize("file,arg", CASES, ids=[f + ":" + a for f, a in CASES])
def test_twenty_steps_match_the_pre_redesign_metrics(tmp_path, file, arg):
    os.environ["RLPT_NO_PROGRESS"] = "1"
    from rlpt.train import run
    run(_config(file, arg), str(tmp_path))
    rows = _rl_rows(str(tmp_path))
    name = (file[:-3] + "_" + arg.strip(",").replace("=", "_")).strip("_") + ".json"
    path = os.path.join(GOLDEN_DIR, name)
    if os.environ.get("RLPT_RECORD_GOLDEN") == "1":
        with open(path, "w") as f:
            json.dump(rows, f, indent=1, sort_keys=True)
        return
    golden = json.load(open(path))
    assert [(r["phase"], r["step"]) for r in rows] == [(r["phase"], r["step"]) for r in golden]
    for got, want in zip(rows, golden):
        missing = sorted(set(want) - set(got))
        assert not missing, f"{name} step {want['step']}: metrics gone: {missing}"
        for k, v in want.items():
            if k in ("phase", "step"):
                continue
            np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name} {want['phase']} step {want['step']}: {k}")

"""Sweeps (rlpt.sweep): points and grouping, bad input, a vmapped run equals the run alone,
the results files, and resume after a real SIGKILL (slow)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tqdm import tqdm

from conftest import REPO_ROOT
from sweep_helpers import small_config
from rlpt.config import base_config, validate
from rlpt.sweep.main import main, run_sweep
from rlpt.sweep.points import (SweepError, algorithm_arms, axis, chosen_algorithm_arms,
                               group_points, points_to_configs, product, seeds, union_algo)
from rlpt.sweep.run import run_group
from rlpt.train import run


def test_axes_product_and_seeds():
    pts = product(axis("config.optim.lr", [1e-4, 1e-3]), seeds(2, start=5))
    assert pts == [{"config.optim.lr": 1e-4, "config.seed": 5},
                   {"config.optim.lr": 1e-4, "config.seed": 6},
                   {"config.optim.lr": 1e-3, "config.seed": 5},
                   {"config.optim.lr": 1e-3, "config.seed": 6}]
    with pytest.raises(SweepError, match="'config.seed' is set by two axes"):
        product(seeds(2), seeds(3))


def test_algorithm_arms_switch_the_algorithm_on_a_union_base():
    """Each arm applied to a base whose algo is union_algo(names) gives exactly that algorithm's
    defaults on every key it has (the uniform keys aside); GSPO's clip is its paper value."""
    names = ["grpo", "gspo", "ppo"]
    arms = algorithm_arms(names)
    assert arms[0] == {"config.algo.name": "grpo"}
    assert arms[1]["config.algo.eps_low"] == 3e-4 and arms[1]["config.algo.eps_high"] == 4e-4
    for name, arm in zip(names, arms):
        base = base_config(names[0])
        base.algo = union_algo(names)
        base.algo.group_size, base.algo.beta = -1, 0.0   # uniform keys, set alike in every arm
        [point] = points_to_configs(base, [arm])
        alone = base_config(name)
        alone.algo.group_size, alone.algo.beta = -1, 0.0
        for k, v in validate(alone).algo.items():   # the algorithm configured on its own
            assert point.cfg.algo[k] == v, (name, k)
    # an experiment's `arms` argument picks and orders them; an unknown name is refused
    assert chosen_algorithm_arms("gspo", ["grpo", "gspo", "ppo"], "ppo/grpo") == \
        [algorithm_arms(["gspo", "grpo", "ppo"])[i] for i in (2, 1)]
    with pytest.raises(ValueError, match=r"unknown \['gtpo'\]; known: \['grpo', 'gspo', 'ppo'\]"):
        chosen_algorithm_arms("grpo", names, "grpo/gtpo")


def test_grouping_by_static_config():
    """Seeds and dynamic hyperparameters share a group; a shape, a static flag, or a float
    whose zero-ness is static (clipping on/off) splits it; a host reward is not vmappable."""
    points = product(axis("config.optim.lr", [1e-4, 1e-3]), seeds(2)) + [
        {"config.algo.beta": 0.1, "config.seed": 9},          # dynamic: same group
        {"config.sft.optim.lr": 3e-3, "config.seed": 9},      # dynamic (SFT): same group
        {"config.rl.batch_size": 8},                          # a shape
        {"config.optim.max_grad_norm": 0.0},                  # clipping off: static
        {"config.algo.beta": 0.0},                            # kl_term off: static
        {"config.reward.kind": "host"},                       # host reward
    ]
    groups = group_points(points_to_configs(small_config(), points))
    assert [[p.index for p in g.points] for g in groups] == [[0, 1, 2, 3, 4, 5], [6], [7], [8],
                                                             [9]]
    assert [g.vmapped for g in groups] == [True, True, True, True, False]
    assert "reward.kind='host'" in groups[-1].reason


@pytest.mark.parametrize("points, message", [
    ([], "empty grid"),
    ([{"config.optim.lrr": 1e-3}], r"sweep point 0 .*unknown config key 'config.optim.lrr'"),
    ([{"config.seed": 0}, {"config.nosuch.key": 1}],
     r"sweep point 1 .*unknown config key 'config.nosuch.key' \(no 'nosuch'"),
    ([{"config.optim.lr": "fast"}], r"sweep point 0 .*config.optim.lr='fast' has the wrong type"),
    ([{"config.algo.dynamic_sampling": 1}], r"config.algo.dynamic_sampling=1 has the wrong type"),
    ([{"optim.lr": 1e-3}], r"key 'optim.lr' must start with 'config.'"),
    ([{"config.optim": 1.0}], r"'config.optim' is a section"),
    ([{"config.optim.lr": -1.0}], r"sweep point 0 .*config optim.lr: -1.0 must be > 0"),
    ([{"config.seed": 1}, {"config.seed": 2}, {"config.seed": 1}],
     r"sweep points 0 and 2 both write points/seed=1"),
    ("seeds", "must return a list of"),
])
def test_bad_points_fail_before_compiling_naming_point_and_key(points, message):
    with pytest.raises(SweepError, match=message):
        points_to_configs(small_config(), points)


def test_config_overrides_reach_the_base_and_bad_ones_are_one_line(tmp_path, capsys,
                                                                     monkeypatch):
    """`rlpt.sweep` took no --config.X= overrides (issue 30): they are applied to the base
    config as rlpt.train applies them; a key the points set, an unknown key or a bad value is
    one line."""
    import rlpt.sweep.main as sweep_main
    seen = {}
    monkeypatch.setattr(sweep_main, "run_sweep", lambda base, points, workdir, sft_from:
                        seen.update(base=base, points=points))
    cfg = tmp_path / "s.py"
    cfg.write_text("from sweep_helpers import small_config\n"
                   "def get_config(arg): return small_config()\n"
                   "def get_sweep(arg): return [{'config.seed': 0}, {'config.seed': 1}]\n")
    run = lambda *extra: main([f"--config={cfg}", f"--workdir={tmp_path / 'w'}", *extra])
    run("--config.rl.steps=30", "--config.optim.lr=3e-4", "--config.algo.loss_agg=seq_mean",
        "--config.eval.ks=(1, 2)", "--config.sampling.top_k=5")
    b = seen["base"]
    assert (b.rl.steps, b.optim.lr, b.algo.loss_agg, tuple(b.eval.ks), b.sampling.top_k) == \
        (30, 3e-4, "seq_mean", (1, 2), 5)
    for extra, message in ((["--config.seed=3"], "the sweep's points set config.seed"),
                           (["--config.rl.stepz=3"], "unknown config key rl.stepz"),
                           (["--config.rl.steps=abc"], "--config.rl.steps=abc: the field is of type int")):
        with pytest.raises(SystemExit) as e:
            run(*extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and message in err[0], err


def test_cli_errors_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad_sweep.py"
    cfg.write_text("from sweep_helpers import small_config\n"
                   "def get_config(arg): return small_config()\n"
                   "def get_sweep(arg): return [{'config.seed': 0}, {'config.rl.stepz': 3}]\n")
    with pytest.raises(SystemExit) as e:
        main([f"--config={cfg}", f"--workdir={tmp_path / 'w'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("rlpt.sweep: error: ")
    assert "sweep point 1" in err[0] and "config.rl.stepz" in err[0]
    (tmp_path / "no_sweep.py").write_text("def get_config(arg): pass\n")
    with pytest.raises(SystemExit):
        main([f"--config={tmp_path / 'no_sweep.py'}", f"--workdir={tmp_path / 'w'}"])
    assert "has no get_sweep" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing written, nothing compiled


def _rows(path):
    return [json.loads(line) for line in open(path)]


def _assert_rows_close(got, want, rtol=1e-5, atol=1e-7):
    assert [(r["phase"], r["step"]) for r in got] == [(r["phase"], r["step"]) for r in want]
    for a, b in zip(got, want):
        assert set(a) == set(b)
        for k in a:
            if k not in ("phase", "step"):
                np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol,
                                           err_msg=f"{a['phase']} step {a['step']} {k}")


@pytest.mark.slow
def test_vmapped_run_equals_the_run_alone(tmp_path):
    """A point of a vmapped group (2 runs: other seed and lr) equals `rlpt.train.run` of its
    config: 10 SFT steps, 20 RL steps and 3 evaluations, every metric to rtol 1e-5 (atol 1e-7
    for near-zero ones such as kl). Not bitwise: XLA:CPU emits a reduction over [R*rows, n]
    differently from one over [rows, n], so sums differ in the last bits (docs/sweeps.md).
    ~40 s on the shared 2-core CPU (compiling both programs), hence slow."""
    base = small_config(sft_steps=10, rl_steps=20)
    points = [{"config.seed": 0, "config.optim.lr": 5e-4},
              {"config.seed": 1, "config.optim.lr": 2e-3}]
    [group] = group_points(points_to_configs(base, points))
    run_group(group, str(tmp_path / "sweep"), tqdm(disable=True))
    p = group.points[1]
    run(p.cfg, str(tmp_path / "alone"))
    got = _rows(tmp_path / "sweep" / "points" / p.name / "metrics.jsonl")
    want = _rows(tmp_path / "alone" / "metrics.jsonl")
    assert len([r for r in got if r["phase"] == "rl"]) == 20
    assert [r["step"] for r in got if r["phase"] == "eval"] == [0, 10, 20]
    _assert_rows_close(got, want)
    other = _rows(tmp_path / "sweep" / "points" / group.points[0].name / "metrics.jsonl")
    assert other[0]["loss"] != got[0]["loss"]  # the other run is another run


def _write_cli_config(path, rl_steps):
    path.write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.path.join(REPO_ROOT, 'tests')!r})\n"
        "from sweep_helpers import small_config\n"
        "from rlpt.sweep.points import axis, product, seeds\n"
        f"def get_config(arg): return small_config(sft_steps=4, rl_steps={rl_steps}, "
        "dense=False)\n"
        "def get_sweep(arg):\n"
        "    return product(axis('config.optim.lr', [5e-4, 1e-3]), seeds(2)) + "
        "[{'config.rl.batch_size': 2}]\n")


@pytest.mark.slow
def test_sweep_resumes_after_sigkill_with_the_same_table(tmp_path):
    """Killed (SIGKILL) while its second group trains, a restarted sweep skips the finished
    group (its files untouched), resumes the other from its checkpoint, and writes the table,
    metrics and sweep.json of an uninterrupted sweep (~80 s)."""
    cfg = tmp_path / "sweep_cfg.py"
    _write_cli_config(cfg, rl_steps=12)
    env = dict(os.environ, RLPT_NO_PROGRESS="1", PYTHONPATH=REPO_ROOT)
    cmd = lambda wd: [sys.executable, "-m", "rlpt.sweep", f"--config={cfg}", f"--workdir={wd}"]
    ref, wd = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cmd(ref), env=env, check=True, capture_output=True)
    err = open(tmp_path / "killed_stderr.txt", "w")
    proc = subprocess.Popen(cmd(wd), env=env, stdout=subprocess.DEVNULL, stderr=err)
    g1_ckpt = wd / "groups" / "g001" / "ckpt" / "rl"
    deadline = time.time() + 300
    while not (g1_ckpt.exists() and any(g1_ckpt.iterdir())) and time.time() < deadline:
        if proc.poll() is not None:
            err.close()
            raise AssertionError("the sweep ended before it could be killed (exit "
                                 f"{proc.returncode}):\n"
                                 + (tmp_path / "killed_stderr.txt").read_text()[-3000:])
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (wd / "groups" / "g000" / "done.json").exists()
    assert not (wd / "groups" / "g001" / "done.json").exists()
    g0_metrics = wd / "points" / "optim.lr=0.0005,seed=0" / "metrics.jsonl"
    mtime = g0_metrics.stat().st_mtime_ns
    out = subprocess.run(cmd(wd), env=env, check=True, capture_output=True, text=True).stdout
    assert "group g000 (4 points) finished before: skipped" in out
    assert g0_metrics.stat().st_mtime_ns == mtime
    assert (wd / "table.md").read_text() == (ref / "table.md").read_text()
    for name in os.listdir(ref / "points"):
        assert _rows(wd / "points" / name / "metrics.jsonl") == \
            _rows(ref / "points" / name / "metrics.jsonl"), name
    strip = lambda s: {k: v for k, v in s.items() if "seconds" not in k}
    got, want = (json.loads((d / "sweep.json").read_text()) for d in (wd, ref))
    assert [strip(p["summary"]) for p in got["points"]] == \
        [strip(p["summary"]) for p in want["points"]]
    assert got["settings"] == want["settings"]


def test_run_sweep_writes_table_curves_and_sweep_json(tmp_path):
    """Two seeds x two learning rates (one program): table.md has a 95% t-interval per
    setting, sweep.json the points/settings/groups, curves.png exists; a restart with other
    points is refused."""
    base = small_config(sft_steps=2, rl_steps=2, dense=False)
    points = product(axis("config.optim.lr", [5e-4, 1e-3]), seeds(2))
    wd = str(tmp_path / "sw")
    res = run_sweep(base, points, wd, progress=False)
    table = open(os.path.join(wd, "table.md")).read()
    assert "95% Student-t interval" in table
    row = [line for line in table.splitlines() if line.startswith("| optim.lr=0.0005 |")][0]
    assert row.split("|")[2].strip() == "2" and "[" in row  # n = 2 seeds, an interval
    assert os.path.getsize(os.path.join(wd, "curves.png")) > 10_000
    saved = json.load(open(os.path.join(wd, "sweep.json")))
    assert saved["settings"] == json.loads(json.dumps(res["settings"]))
    assert len(saved["groups"]) == 1 and saved["groups"][0]["vmapped"]
    ci = saved["settings"][0]["metrics"]["after_rl"]["greedy_acc"]
    assert ci["n"] == 2 and ci["lo"] <= ci["mean"] <= ci["hi"]
    with pytest.raises(SweepError, match="another config or other points"):
        run_sweep(base, points[:2], wd, progress=False)


def test_only_selects_points_by_name():
    from rlpt.sweep.main import select_points
    base = small_config()
    points = product(axis("config.optim.lr", [5e-4, 1e-3]), seeds(5))
    got = select_points(base, points, r"seed=[34]$")
    assert got == [p for p in points if p["config.seed"] in (3, 4)] and len(got) == 4
    with pytest.raises(SweepError, match="matches none of the 10 points"):
        select_points(base, points, "seed=9")
    with pytest.raises(SweepError, match="not a regular expression"):
        select_points(base, points, "seed=(")


def test_the_sft_cache_key_follows_the_data_the_warm_up_reads():
    """A one_shot task warms up on its base task (rlpt.tasks.sft_source): its key is the base
    task's, whatever the example; other base data or another seed is another key."""
    from rlpt.sweep.sft_cache import sft_key
    base = small_config(dense=False)
    one_shot = lambda index, base_kwargs: dict(name="one_shot", kwargs=dict(
        base=base.task.name, base_kwargs=base_kwargs, index=index))
    keys = {}
    for label, task, seed in [("base", None, 0), ("ex3", one_shot(3, base.task.kwargs), 0),
                              ("ex5", one_shot(5, base.task.kwargs), 0),
                              ("other", one_shot(3, dict(base.task.kwargs, max_digits=3)), 0),
                              ("seed1", None, 1)]:
        c = base.copy_and_resolve_references()
        c.seed = seed
        if task:
            c.task.name, c.task.kwargs = task["name"], task["kwargs"]
        keys[label] = sft_key(c)
    assert keys["base"] == keys["ex3"] == keys["ex5"]
    assert len({keys["base"], keys["other"], keys["seed1"]}) == 3


def test_the_evaluation_before_rl_is_shared_where_it_reads_the_same(tmp_path):
    """rlpt.sweep.eval_cache: arms that differ after step 0 (algorithm, RL, optimizer) share a
    key; another seed shares it only when neither the params (a checkpoint without SFT) nor the
    evaluation's rng (eval.seed) depend on the seed; a one_shot arm is evaluated as its base
    task; other evaluation settings are another key. load/save name the source."""
    from types import SimpleNamespace
    from rlpt.sweep.eval_cache import EvalCache, eval_key
    base = small_config(dense=False)

    def key(seed=0, checkpoint="", sft_steps=0, eval_seed=None, change=lambda c: None):
        c = base.copy_and_resolve_references()
        c.seed, c.model.checkpoint, c.sft.steps = seed, checkpoint, sft_steps
        if eval_seed is not None:
            c.eval.seed = eval_seed
        change(c)
        return eval_key(c)

    def after_step_0(c):
        c.optim.lr, c.rl.steps, c.algo.name = 1e-2, 7, "dr_grpo"
    ck = "model.gguf"
    assert key() == key(change=after_step_0)
    assert key() != key(seed=1)                                   # from-scratch params
    assert key(checkpoint=ck) != key(checkpoint=ck, seed=1)       # each run's own eval rng
    assert key(checkpoint=ck, eval_seed=0) == key(checkpoint=ck, seed=1, eval_seed=0)
    assert key(checkpoint=ck, sft_steps=3, eval_seed=0) != key(checkpoint=ck, sft_steps=3,
                                                               seed=1, eval_seed=0)
    assert key() != key(change=lambda c: c.eval.update(n_samples=16))
    assert key() != key(change=lambda c: c.sampling.update(
        max_new_tokens=base.sampling.max_new_tokens + 1))
    assert key(checkpoint=ck, eval_seed=0) != key(checkpoint=ck, eval_seed=1)
    one_shot = dict(name="one_shot", kwargs=dict(base=base.task.name,
                                                 base_kwargs=base.task.kwargs.to_dict(), index=3))
    assert key() == key(change=lambda c: c.task.update(one_shot))
    point = lambda name: SimpleNamespace(name=name, cfg=base)
    first = EvalCache(str(tmp_path / "sw"), point("a"))
    assert first.load() is None and first.source is None
    first.save([{"phase": "eval", "step": 0, "greedy_acc": 0.25}])
    later = EvalCache(str(tmp_path / "sw"), point("b"))
    assert later.load() == [{"phase": "eval", "step": 0, "greedy_acc": 0.25}]
    assert later.source == "a"
    elsewhere = EvalCache(str(tmp_path / "other"), point("c"), [str(tmp_path / "sw")])
    assert elsewhere.load() is not None
    assert elsewhere.source == os.path.join(str(tmp_path / "sw"), "points", "a")


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_a_seeds_sft_warm_up_is_trained_once_per_sweep(tmp_path):
    """Arms that differ only in RL settings reuse each seed's SFT params from the first group
    (rlpt.sweep.sft_cache): same SFT rows, same evaluation after SFT; an arm with other SFT
    settings trains its own."""
    base = small_config(sft_steps=3, rl_steps=2, dense=False)
    points = (seeds(2) + product([{"config.rl.batch_size": 2}], seeds(2))
              + [{"config.sft.steps": 2, "config.seed": 0}])
    wd = tmp_path / "sw"
    run_sweep(base, points, str(wd), progress=False)
    pts = {p.name: p for g in group_points(points_to_configs(base, points)) for p in g.points}
    summary = lambda name: json.load(open(wd / "points" / name / "summary.json"))
    rows = lambda name, phase: [r for r in _rows(wd / "points" / name / "metrics.jsonl")
                                if r["phase"] == phase]
    assert len(pts) == 5 and len(os.listdir(wd / "sft_cache")) == 2 * 3   # .npz + .json each
    for seed in (0, 1):
        first, later = f"seed={seed}", f"rl.batch_size=2,seed={seed}"
        assert "sft_reused_from" not in summary(first)
        assert summary(later)["sft_reused_from"] == first
        assert rows(later, "sft") == rows(first, "sft") and len(rows(first, "sft")) == 3
        _assert_rows_close(rows(later, "eval")[:1], rows(first, "eval")[:1], rtol=0, atol=0)
    assert rows("seed=0", "sft") != rows("seed=1", "sft")
    own = "sft.steps=2,seed=0"
    assert "sft_reused_from" not in summary(own) and len(rows(own, "sft")) == 2
    # a follow-up sweep elsewhere starts from this sweep's cached warm-up (--sft_from)
    wd2 = tmp_path / "followup"
    run_sweep(base, product([{"config.rl.steps": 1}], seeds(1)), str(wd2), progress=False,
              sft_from=[str(wd)])
    later = json.load(open(wd2 / "points" / "rl.steps=1,seed=0" / "summary.json"))
    later_rows = _rows(wd2 / "points" / "rl.steps=1,seed=0" / "metrics.jsonl")
    assert later["sft_reused_from"] == os.path.join(str(wd), "points", "seed=0")
    assert [r for r in later_rows if r["phase"] == "sft"] == rows("seed=0", "sft")
    _assert_rows_close([r for r in later_rows if r["phase"] == "eval"][:1],
                       rows("seed=0", "eval")[:1], rtol=0, atol=0)
    with pytest.raises(SweepError, match="no sft_cache"):
        run_sweep(base, seeds(1), str(tmp_path / "x"), progress=False,
                  sft_from=[str(tmp_path / "nowhere")])
    # scripts/show_completions.py decodes a point's policy from its group's RL checkpoint
    show = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts",
                                                        "show_completions.py"),
                           str(wd), "rl.batch_size=2,seed=1", "--n", "3"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert show[0].startswith("rl.batch_size=2,seed=1: group g001 run 1, RL checkpoint step 2")
    assert len(show) == 4 and all(" -> " in line for line in show[1:])


@pytest.mark.slow   # two nano runs alone, ~25 s; test_a_seeds_sft... covers vmapped groups
def test_points_that_train_alone_share_a_seeds_warm_up(tmp_path):
    """Points outside a vmapped program (here a host reward) read and write the same SFT cache
    (rlpt.sweep.sft_cache.PointCache): the second arm starts RL from the first arm's SFT
    params, with its SFT rows, and evaluates identically after SFT."""
    base = small_config(sft_steps=3, rl_steps=2, dense=False)
    base.reward.kind = "host"
    wd = tmp_path / "sw"
    run_sweep(base, product(axis("config.rl.batch_size", [4, 2]), seeds(1)), str(wd),
              progress=False)
    first, later = "rl.batch_size=4,seed=0", "rl.batch_size=2,seed=0"
    summary = lambda name: json.load(open(wd / "points" / name / "summary.json"))
    rows = lambda name, phase: [r for r in _rows(wd / "points" / name / "metrics.jsonl")
                                if r["phase"] == phase]
    assert "sft_reused_from" not in summary(first)
    assert summary(later)["sft_reused_from"] == first
    assert len(rows(first, "sft")) == 3 and rows(later, "sft") == rows(first, "sft")
    assert rows(later, "eval")[0] == rows(first, "eval")[0]
    assert summary(later)["eval_before_reused_from"] == first   # rlpt.sweep.eval_cache
    assert "eval_before_reused_from" not in summary(first)
    assert os.listdir(wd / "points" / later / "ckpt") == ["rl"]   # no SFT of its own
    # scripts/show_completions.py reads a point that trained alone from its own RL checkpoint
    show = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts",
                                                        "show_completions.py"),
                           str(wd), later, "--n", "2"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert show[0].startswith(f"{later}: group g001 run 0, RL checkpoint step 2")
    assert len(show) == 3 and all(" -> " in line for line in show[1:])

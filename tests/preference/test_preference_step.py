"""Preference step and trainer: a smoke run of every algorithm from configs/dpo_arith.py (nano
model, 2 steps with its dynamic hyperparameters as arguments: finite loss, params changed,
per-pair gradient weight logged), a new beta without a recompile, Pre-DPO with guide == SFT
equal to DPO bitwise, online DPO's pairs and generator sync, the CLI end to end (JSONL source,
exact resume; Pre-DPO's two stages; the entry point rlpt.train dispatches to), config errors
before compilation, and the step on a 2-device mesh with explicit shardings."""
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO_ROOT, fake_devices_env
from rlpt.config import config_file
from rlpt.preference.config import hparams, validate
from rlpt.preference.reward_model import init_reward_model
from rlpt.preference.step import jit_step
from rlpt.preference.train import pair_source, policy_state, policy_step, run
from rlpt.tasks.preference_data import PreferencePair, write_preference_jsonl
from rlpt.tasks.synthetic_pairs import SyntheticPairs
from rlpt.build import build_model, build_task

os.environ["RLPT_NO_PROGRESS"] = "1"


def load_config(name, arg):
    return config_file(os.path.join(REPO_ROOT, "configs", f"{name}.py")).get_config(arg)


def dpo_config(algo, **pref):
    cfg = load_config("dpo_arith", f"algo={algo},size=nano,quick=1")
    cfg.pref.batch_size = 8
    cfg.optim.lr = 1e-3
    cfg.pref.update(pref)
    return cfg


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(leaves(a), leaves(b)))


def steps(step, state, batch_fn, n, hp):
    fn = jit_step(step)
    rows = []
    for i in range(n):
        state, m = fn(state, batch_fn(i), hp)
        rows.append({k: float(v) for k, v in jax.device_get(m).items()})
    return state, rows


@functools.lru_cache(maxsize=None)
def smoke(algo, g="task_reward"):
    """2 steps of `algo` from its config; the reference (Pre-DPO: the guide) is the initial
    model. Returns (initial params, final params, metrics rows)."""
    cfg = dpo_config(algo)
    if algo == "drpo":
        cfg.algo.g = g
    cfg = validate(cfg)
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    aux = None
    if algo == "drpo" and g == "reward_model":
        aux = init_reward_model(model_cfg, jax.random.PRNGKey(5), params)
    step = policy_step(cfg, model_cfg, task, model_cfg if aux is not None else None)
    state = policy_state(cfg, step, params, params, aux)
    src = pair_source(cfg, task)
    final, rows = steps(step, state, lambda i: src.make_batch(cfg.seed, i, 8), 2, hparams(cfg))
    return params, final.params, rows


@pytest.mark.parametrize("algo,g", [("dpo", None), ("ipo", None), ("cdpo", None),
                                    ("rdpo", None), ("simpo", None), ("pre_dpo", None),
                                    pytest.param("drpo", "task_reward", marks=pytest.mark.slow),
                                    ("drpo", "reward_model")])
def test_smoke_from_config(algo, g):
    p0, p1, rows = smoke(algo, g or "task_reward")  # the same cache key as below
    for r in rows:
        assert all(np.isfinite(v) for v in r.values()), r
    assert max_diff(p0, p1) > 1e-5
    if algo == "drpo":
        assert {"dr_estimate", "is_weight", "kl", "g_online"} <= set(rows[0])
        assert 0.4 <= rows[0]["is_weight"] <= 2.5  # clipped to [1/c, c]
    else:
        assert "grad_weight" in rows[0] and rows[0]["pair_frac"] == 1.0
    if algo in ("dpo", "pre_dpo"):
        # step 0: policy == reference, so h = 0 and the DPO weight is sigmoid(0) = 0.5
        assert rows[0]["grad_weight"] == pytest.approx(0.5, abs=1e-6)
        assert rows[0]["loss"] == pytest.approx(np.log(2.0), abs=1e-6)
        assert rows[1]["grad_weight"] != pytest.approx(0.5, abs=1e-6)


def test_a_new_beta_is_an_argument_not_a_recompile():
    """`hp["algo"]` holds the declared dynamic fields (DPO: beta): a second value runs the same
    compiled program and changes the update; without it the config's value is compiled in."""
    cfg = validate(dpo_config("dpo"))
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    step = policy_step(cfg, model_cfg, task)
    state = policy_state(cfg, step, params, params)
    traces = []

    def counted(s, b, hp):
        traces.append(1)
        return step(s, b, hp)

    fn = jax.jit(counted)
    batch = pair_source(cfg, task).make_batch(0, 0, 8)
    hp = hparams(cfg)
    assert set(hp["algo"]) == {"beta"}
    new = [fn(state, batch, dict(hp, algo={"beta": jnp.float32(b)}))[0] for b in (0.1, 0.5)]
    assert len(traces) == 1
    assert max_diff(new[0].params, new[1].params) > 0
    static, _ = jit_step(step, donate=False)(state, batch, {"optim": hp["optim"]})
    assert max_diff(static.params, new[0].params) < 1e-6


def test_pre_dpo_with_sft_guide_equals_dpo_exactly():
    _, dpo_params, dpo_rows = smoke("dpo", "task_reward")  # cached from the smoke tests
    _, pre_params, pre_rows = smoke("pre_dpo", "task_reward")
    for x, y in zip(leaves(dpo_params), leaves(pre_params)):
        np.testing.assert_array_equal(x, y)
    assert dpo_rows == pre_rows


def test_online_dpo_pairs_contrast_mask_and_generator_sync():
    """Reward = first completion token id divisible by 4, so a random model has contrast.
    s=2: the generator is the policy at updates 0, 2, 4, ... and stays put in between."""
    cfg = dpo_config("online_dpo")
    cfg.algo.sync_every, cfg.algo.num_samples = 2, 4
    cfg = validate(cfg)
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)

    def reward(tokens, mask, target, target_len):
        return (tokens[:, 0] % 4 == 0).astype(jnp.float32), {}

    task.reward = reward
    step = policy_step(cfg, model_cfg, task)
    state = policy_state(cfg, step, params, params)
    src = SyntheticPairs(task)
    batch_fn = lambda i: src.make_batch(0, i, 8)

    data, m, frozen = jax.jit(step.prepare)(state, batch_fn(0), jax.random.PRNGKey(3))
    assert set(frozen) == {"generator"}
    rc = np.asarray(reward(data["chosen"], data["chosen_mask"], None, None)[0])
    rr = np.asarray(reward(data["rejected"], data["rejected_mask"], None, None)[0])
    valid = np.asarray(data["mask"]) > 0
    assert valid.any() and not valid.all()  # some prompts with and some without contrast
    np.testing.assert_array_equal(rc > rr, valid)
    np.testing.assert_array_equal(rc >= rr, True)
    assert float(m["contrast_frac"]) == pytest.approx(valid.mean())

    history, fn = [state], jit_step(step, donate=False)
    hp = hparams(cfg)
    for i in range(3):
        state, metrics = fn(state, batch_fn(i), hp)
        history.append(state)
        assert np.isfinite(float(metrics["loss"])) and float(metrics["pair_frac"]) > 0
        assert float(metrics["synced"]) == (1.0 if i % 2 == 0 else 0.0)
    p = [h.params for h in history]
    assert max_diff(p[0], p[1]) > 0 and max_diff(p[1], p[2]) > 0
    gen = [h.frozen["generator"] for h in history]
    assert max_diff(gen[1], p[0]) == 0   # synced at update 0
    assert max_diff(gen[2], p[0]) == 0   # not synced at update 1
    assert max_diff(gen[3], p[2]) == 0   # synced at update 2


def _final(workdir, phase, step):
    path = os.path.join(workdir, "ckpt", phase, str(step), "default")
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))["params"]


def test_cli_jsonl_dpo_outputs_and_exact_resume(tmp_path):
    task = build_task(validate(dpo_config("dpo")))
    src = SyntheticPairs(task)
    b = src.make_batch(7, 0, 24)
    dec = task.tokenizer.decode
    pairs = [PreferencePair(task.decode_prompt(b["prompt"][i]), dec(b["chosen"][i]),
                            dec(b["rejected"][i])) for i in range(24)]
    path = str(tmp_path / "pairs.jsonl")
    write_preference_jsonl(path, pairs)

    def cfg(n):
        c = load_config("dpo_arith", f"algo=dpo,size=nano,quick=1,source={path}")
        c.sft.steps, c.pref.steps, c.pref.batch_size, c.ckpt_every = 0, n, 8, 2
        c.pref.jsonl_eval_pairs, c.pref.max_prompt_len, c.pref.max_response_len = 8, 8, 6
        return c

    ref, resumed = str(tmp_path / "ref"), str(tmp_path / "resumed")
    summary = run(cfg(4), ref)
    for name in ("config.json", "metrics.jsonl", "summary.json", "results.md"):
        assert os.path.exists(os.path.join(ref, name)), name
    assert json.load(open(os.path.join(ref, "config.json")))["pref"]["source"] == "jsonl"
    assert summary["final"]["step"] == 4 and np.isfinite(summary["final"]["pair_loss"])
    run(cfg(2), resumed)
    run(cfg(4), resumed, allow_config_change=True)  # resumes from the step-2 ckpt
    for x, y in zip(leaves(_final(ref, "pref", 4)), leaves(_final(resumed, "pref", 4))):
        np.testing.assert_array_equal(x, y)
    rows = lambda w: [json.loads(l) for l in open(os.path.join(w, "metrics.jsonl"))]
    assert [r for r in rows(ref) if r["phase"] == "pref"] == \
        [r for r in rows(resumed) if r["phase"] == "pref"]


@pytest.mark.slow   # two nano preference runs in a sweep, ~30 s
def test_preference_points_log_validation_and_share_their_warm_up(tmp_path):
    """With eval.validation_prompts a policy run evaluates them beside the held-out prompts at
    every evaluation (rows of phase "validation", summary validation_after_sft / _after_rl), and
    preference points of a sweep, each trained alone, share a seed's SFT warm-up through the
    sweep's cache (rlpt.sweep.sft_cache.PointCache)."""
    from rlpt.sweep.main import run_sweep
    from rlpt.sweep.points import axis, product, seeds
    base = load_config("dpo_arith", "algo=dpo,size=nano,quick=1")
    base.eval.validation_prompts = 8
    base.wandb.mode = "disabled"
    wd = tmp_path / "sw"
    run_sweep(base, product(axis("config.algo.beta", [0.1, 0.3]), seeds(1)), str(wd),
              progress=False)
    first, later = "algo.beta=0.1,seed=0", "algo.beta=0.3,seed=0"
    rows = lambda name: [json.loads(x) for x in open(wd / "points" / name / "metrics.jsonl")]
    summary = lambda name: json.load(open(wd / "points" / name / "summary.json"))
    for name in (first, later):
        ev = [r["step"] for r in rows(name) if r["phase"] == "pref_eval"]
        val = [r for r in rows(name) if r["phase"] == "validation"]
        assert [r["step"] for r in val] == ev and len(ev) >= 2
        assert {"greedy_acc", "pass@1"} <= set(val[-1])
        assert summary(name)["validation_after_rl"] == val[-1]
    sft = lambda name: [r for r in rows(name) if r["phase"] == "sft"]
    assert "sft_reused_from" not in summary(first) and summary(later)["sft_reused_from"] == first
    assert sft(later) == sft(first) and len(sft(first)) == base.sft.steps
    assert summary(later)["initial"]["greedy_acc"] == summary(first)["initial"]["greedy_acc"]


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_preference_entry_point_on_the_command_line(tmp_path):
    """`run(cfg, workdir, allow_config_change)` has rlpt.train.run's signature (rlpt.train hands
    it preference configs); `python -m rlpt.preference.train` runs a config from the CLI."""
    import inspect

    import rlpt.train
    from rlpt.preference import train as pref_train
    assert inspect.signature(pref_train.run) == inspect.signature(rlpt.train.run)
    proc = subprocess.run(
        [sys.executable, "-m", "rlpt.preference.train",
         "--config=configs/dpo_arith.py:algo=simpo,size=nano,quick=1", "--config.sft.steps=0",
         "--config.eval.n_prompts=0", f"--workdir={tmp_path / 'w'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.load(open(tmp_path / "w" / "summary.json"))
    assert summary["algo"] == "simpo" and summary["final"]["step"] == 3


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_cli_pre_dpo_two_stages(tmp_path):
    """SFT (rlpt.train.run_sft) -> guide (DPO from SFT) -> DPO from SFT with ref := guide."""
    c = load_config("dpo_arith", "algo=pre_dpo,size=nano,quick=1")
    c.sft.steps, c.pref.steps, c.pref.batch_size, c.optim.lr = 2, 2, 8, 1e-3
    c.eval.n_prompts = 0  # no task sampling eval (compile time); held-out pair metrics only
    summary = run(c, str(tmp_path / "w"))
    sft, guide = _final(str(tmp_path / "w"), "sft", 2), _final(str(tmp_path / "w"), "guide", 2)
    final = _final(str(tmp_path / "w"), "pref", 2)
    assert max_diff(sft, guide) > 1e-5 and max_diff(sft, final) > 1e-5
    assert set(summary["final"]) == {"step", "pair_acc", "pair_loss", "policy_pair_acc"}
    rows = [json.loads(l) for l in open(tmp_path / "w" / "metrics.jsonl")]
    assert {r["phase"] for r in rows} == {"sft", "guide", "pref", "pref_eval"}


@pytest.mark.parametrize("algo,field,value,needle", [
    ("online_dpo", "algo.sync_every", 0, "algo.sync_every"),
    ("rdpo", "algo.eps", 0.6, "algo.eps"),
    ("drpo", "algo.is_weight", "clipped", "algo.is_weight"),
    ("drpo", "algo.g", "judge", "algo.g"),
    ("pre_dpo", "algo.guide_loss", "ipo", "algo.guide_loss"),
    ("online_dpo", "pref.source", "jsonl", "pref.jsonl_path"),
])
def test_bad_config_fails_before_compiling(algo, field, value, needle):
    cfg = dpo_config(algo)
    section, key = field.split(".")
    cfg[section][key] = value
    with pytest.raises(ValueError, match=needle):
        validate(cfg)


def test_online_dpo_needs_task_reward_source(tmp_path):
    cfg = dpo_config("online_dpo")
    (tmp_path / "p.jsonl").write_text('{"prompt": "1+1=", "chosen": "2", "rejected": "3"}\n')
    cfg.pref.source, cfg.pref.jsonl_path = "jsonl", str(tmp_path / "p.jsonl")
    with pytest.raises(ValueError, match="needs pref.source='synthetic'"):
        validate(cfg)


MESH_SCRIPT = r"""
import jax, numpy as np
from rlpt import sharding
from rlpt.loop import place_state
from rlpt.optim import optim_hparams
from rlpt.preference.config import validate
from rlpt.preference.step import jit_step
from rlpt.preference.train import policy_state, policy_step
from rlpt.tasks.synthetic_pairs import SyntheticPairs
from rlpt.build import build_model, build_task
from rlpt.config import load_config
cfg = load_config("configs/dpo_arith.py:algo=dpo,size=nano,quick=1"); cfg.pref.batch_size = 8; cfg = validate(cfg)
task = build_task(cfg); model_cfg, params = build_model(cfg)
batch = SyntheticPairs(task).make_batch(0, 0, 8)
hp = {"optim": optim_hparams(cfg.optim)}
out = []
for axes in ({"data": 1}, {"data": 2}):
    mesh = sharding.make_mesh(axes, jax.devices()[:axes["data"]])
    step = policy_step(cfg, model_cfg, task)
    state = place_state(policy_state(cfg, step, params, params), step.optimizer, mesh)
    fn = jit_step(step, state, batch, mesh)
    new, metrics = fn(state, sharding.shard_batch(batch, mesh), hp)
    assert new.params["embed"]["embedding"].sharding == state.params["embed"]["embedding"].sharding
    out.append((float(metrics["loss"]),
                [np.asarray(x) for x in jax.tree_util.tree_leaves(new.params)]))
spec = sharding.shard_batch(batch, mesh)["chosen"].sharding.spec
assert spec[0] in ("data", ("data",)), spec  # the pair batch is split over the 2 devices
assert abs(out[0][0] - out[1][0]) < 1e-6
assert max(float(np.max(np.abs(a - b))) for a, b in zip(out[0][1], out[1][1])) < 1e-5
print("MESH_OK")
"""


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_step_on_two_device_mesh_matches_one_device():
    env = dict(fake_devices_env(2), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", MESH_SCRIPT], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "MESH_OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]

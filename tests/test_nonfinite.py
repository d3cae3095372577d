"""The non-finite guard (issue 12): a NaN / infinite loss, gradient or update never reaches the
parameters of any step (RL, SFT, preference, reward model); NaN and raising rewards are replaced
and counted; K consecutive bad steps stop the run naming the steps and the terms; a non-finite
state is never checkpointed; summary.json stays valid JSON."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from rlpt.config import validate
from rlpt.io.checkpoints import Checkpointer, NonFiniteStateError
from rlpt.io.workdir import write_json_atomic
from rlpt.loop import NonFiniteError, NonFiniteMonitor
from rlpt.models import get_model_config, init_params
from rlpt.optim import apply_update, make_optimizer, optim_hparams
from rlpt.rewards.host_callback import host_reward_callback
from rlpt.state import new_state
from rlpt.step import make_fused_step, make_sft_step
from rlpt.build import build_rl, build_task

os.environ["RLPT_NO_PROGRESS"] = "1"
NAN = float("nan")


def nano_rl(reward=None, **algo):
    cfg = grpo_arith.get_config("size=nano")
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    cfg.rl.ppo_epochs, cfg.rl.minibatches = 1, 2
    cfg.algo.update(algo)
    cfg = validate(cfg)
    task = build_task(cfg)
    model_cfg = get_model_config("nano")
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, task, reward=reward)
    return spec, state, hp, make_batch(0)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


def test_apply_update_skips_a_nonfinite_loss_gradient_or_learning_rate():
    o = grpo_arith.get_config("").optim
    opt = make_optimizer(o)
    params = {"w": jnp.ones(3)}
    opt_state = opt.init(params)
    hp = optim_hparams(o)
    cases = [(1.0, {"w": jnp.ones(3)}, hp, False), (NAN, {"w": jnp.ones(3)}, hp, True),
             (1.0, {"w": jnp.array([1.0, jnp.inf, 0.0])}, hp, True),
             (1.0, {"w": jnp.ones(3)}, dict(hp, lr=jnp.float32(NAN)), True)]
    for loss, grads, h, skipped in cases:
        p, s, m = apply_update(opt, jnp.float32(loss), grads, opt_state, params, h)
        assert float(m["nonfinite_updates"]) == float(skipped)
        assert same(p, params) == skipped and same(s, opt_state) == skipped
        assert all(np.isfinite(x).all() for x in leaves(p))


def test_rl_step_with_a_nan_loss_keeps_the_state_and_counts_the_skips():
    spec, state, hp, batch = nano_rl()
    step = make_fused_step(spec, donate=False)
    bad = dict(hp, algo=dict(hp["algo"], beta=jnp.float32(NAN)))   # data: no recompile
    new, m = step(state, batch, bad)
    assert not np.isfinite(float(m["loss"]))
    assert float(m["nonfinite_updates"]) == 2.0          # both minibatch updates skipped
    assert same(new.params, state.params) and same(new.opt_state, state.opt_state)
    assert int(new.step) == 1
    good, m = step(state, batch, hp)
    assert float(m["nonfinite_updates"]) == 0.0 and not same(good.params, state.params)


def test_nan_rewards_are_replaced_and_counted():
    def nan_every_third(frozen, tokens, mask, target, target_len):
        r = (tokens[:, 0] % 2).astype(jnp.float32)
        return jnp.where(jnp.arange(r.shape[0]) % 3 == 0, jnp.nan, r), {}

    spec, state, hp, batch = nano_rl(nan_every_third)
    new, m = make_fused_step(spec, donate=False)(state, batch, hp)
    n = spec.G * spec.batch_size
    assert float(m["reward_nonfinite"]) == len(range(0, n, 3))
    assert np.isfinite(float(m["reward_mean"])) and np.isfinite(float(m["loss"]))
    assert float(m["nonfinite_updates"]) == 0.0
    assert all(np.isfinite(x).all() for x in leaves(new.params))


def test_a_host_reward_that_raises_on_some_rows_scores_them_and_counts():
    def fragile(tokens, mask, target, target_len):
        if (tokens[:, 0] == tokens[0, 0]).all() and tokens.shape[0] == 1 and tokens[0, 0] % 2:
            raise ValueError("unparsable")
        if tokens.shape[0] > 1 and (tokens[:, 0] % 2).any():
            raise ValueError("the batch call fails, rows are retried one by one")
        return np.ones(tokens.shape[0], np.float32)

    host = host_reward_callback(fragile, on_error=-1.0)
    spec, state, hp, batch = nano_rl(lambda frozen, *a: host(*a))
    with pytest.warns(UserWarning, match="host reward"):
        new, m = make_fused_step(spec, donate=False)(state, batch, hp)
        jax.block_until_ready(m)
    assert float(m["reward_errors"]) > 0
    assert float(m["reward_mean"]) < 1.0 and np.isfinite(float(m["loss"]))


def test_sft_step_skips_a_nonfinite_update():
    cfg = validate(grpo_arith.get_config("size=nano"))
    task = build_task(cfg)
    model_cfg = get_model_config("nano")
    opt = make_optimizer(cfg.sft.optim)
    state = new_state(init_params(model_cfg, jax.random.PRNGKey(0)), opt, 0)
    step = make_sft_step(model_cfg, opt, donate=False)
    hp = {"optim": dict(optim_hparams(cfg.sft.optim), lr=jnp.float32(np.inf))}
    new, m = step(state, task.make_batch(0, 0, 8), hp)
    assert float(m["nonfinite_updates"]) == 1.0 and same(new.params, state.params)


def test_preference_and_reward_model_steps_skip_a_nonfinite_update():
    from configs import dpo_arith, rm_arith
    from rlpt.preference.config import validate as validate_pref
    from rlpt.preference.step import jit_step
    from rlpt.preference.train import pair_source, policy_state, policy_step, rm_state, rm_step
    from rlpt.tasks.synthetic_pairs import SyntheticPairs
    from rlpt.build import build_model

    cfg = dpo_arith.get_config("algo=dpo,size=nano,quick=1")
    cfg.pref.batch_size = 8
    cfg = validate_pref(cfg)
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    step = policy_step(cfg, model_cfg, task)
    state = policy_state(cfg, step, params, params)
    hp = {"optim": dict(optim_hparams(cfg.optim), lr=jnp.float32(NAN))}
    new, m = jit_step(step, donate=False)(state, pair_source(cfg, task).make_batch(0, 0, 8), hp)
    assert float(m["nonfinite_updates"]) == 1.0 and same(new.params, state.params)

    cfg = validate_pref(rm_arith.get_config("kind=bt,size=nano,quick=1"))
    step = rm_step(cfg, model_cfg, task)
    state = rm_state(cfg, model_cfg, step, params)
    hp = {"optim": dict(optim_hparams(cfg.rm.optim), lr=jnp.float32(NAN))}
    groups = SyntheticPairs(task).make_groups(0, 0, 8, cfg.rm.group_size)
    new, m = jit_step(step, donate=False)(state, groups, hp)
    assert float(m["nonfinite_updates"]) == 1.0 and same(new.params, state.params)


def rows(*bad, n=8, **extra):
    return [dict(phase="rl", step=s, loss=NAN if s in bad else 0.5,
                 nonfinite_updates=2.0 if s in bad else 0.0, **extra) for s in range(1, n + 1)]


def test_monitor_stops_after_k_consecutive_bad_steps_naming_steps_and_terms():
    NonFiniteMonitor("rl", {"stop_after": 3}).check(rows(2, 3, 5, 6))   # never 3 in a row
    NonFiniteMonitor("rl", {"stop_after": 0}).check(rows(*range(1, 9)))  # 0: keep skipping
    with pytest.raises(NonFiniteError, match=r"rl steps 4\.\.6: 3 consecutive.*\(loss\)"):
        NonFiniteMonitor("rl", {"stop_after": 3}).check(rows(2, 4, 5, 6, 7))
    m = NonFiniteMonitor("rl", {"stop_after": 2})     # the count survives flushes
    m.check(rows(4, n=4))
    with pytest.raises(NonFiniteError, match="steps 4..5"):
        m.check([dict(phase="rl", step=5, loss=NAN, nonfinite_updates=1.0)])


def test_monitor_fails_on_bad_rewards_only_when_asked():
    r = rows(n=2, reward_nonfinite=0.0, reward_errors=3.0)
    NonFiniteMonitor("rl", {"on_reward": "replace"}).check(r)
    with pytest.raises(NonFiniteError, match="step 1: 3 reward"):
        NonFiniteMonitor("rl", {"on_reward": "fail"}).check(r)


def test_checkpointer_refuses_a_nonfinite_state(tmp_path):
    ckpt = Checkpointer(str(tmp_path), "rl")
    ckpt.save(1, {"w": jnp.ones(2), "step": jnp.int32(1)})
    with pytest.raises(NonFiniteStateError, match="step 2"):
        ckpt.save(2, {"w": jnp.array([1.0, NAN]), "step": jnp.int32(2)})
    assert ckpt.latest_step() == 1


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_diverging_run_stops_keeps_finite_checkpoints_and_no_duplicate_rows(tmp_path,
                                                                               monkeypatch):
    """The trainer end to end with beta = NaN injected into the dynamic hyperparameters (the
    config itself refuses NaN): every RL update is skipped, the run stops at the first flush (step 3)
    with a NonFiniteError naming the loss; SFT's checkpoints and rows are untouched and no RL
    checkpoint exists; the rerun (finite hp) does not duplicate rows."""
    import rlpt.build as build
    import rlpt.train as train
    cfg = grpo_arith.get_config("size=nano,quick=1")
    cfg.nonfinite.stop_after = 2
    cfg.wandb.mode = "disabled"
    cfg.eval.n_prompts, cfg.rl.batch_size, cfg.sampling.num_samples = 8, 4, 4
    cfg.sft.batch_size = 8
    real = build.hparams

    def nan_beta(c):
        hp = real(c)
        return dict(hp, algo=dict(hp["algo"], beta=jnp.float32(NAN)))

    monkeypatch.setattr(build, "hparams", nan_beta)
    with pytest.raises(NonFiniteError, match=r"rl steps 1\.\.2: 2 consecutive.*loss"):
        train.run(cfg, str(tmp_path))
    assert not os.path.exists(tmp_path / "summary.json")
    assert Checkpointer(str(tmp_path), "rl").latest_step() is None
    assert Checkpointer(str(tmp_path), "sft").latest_step() == 10
    monkeypatch.setattr(build, "hparams", real)
    summary = train.run(cfg, str(tmp_path))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    keys = [(r["phase"], r["step"]) for r in map(json.loads, lines)]
    assert len(keys) == len(set(keys)), "duplicated metric rows after the resume"
    assert ("rl", 6) in keys and summary["rl_steps"] == 6
    json.loads((tmp_path / "summary.json").read_text())


def test_summary_json_is_valid_json_with_nonfinite_values(tmp_path):
    path = str(tmp_path / "summary.json")
    write_json_atomic(path, {"a": NAN, "b": [np.inf, 1.0], "c": {"d": -np.inf}})
    assert json.loads(open(path).read(), parse_constant=lambda c: 1 / 0) == {
        "a": None, "b": [None, 1.0], "c": {"d": None}}

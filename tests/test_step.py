"""The generic fused RL step: one program, exact ratio 1, host boundary paths, K iterations per
call, hyperparameters as data (no recompile, vmappable)."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from rlpt import registry
from rlpt.algorithms.base import Piece
from rlpt.config import validate
from rlpt.logprobs import completion_logprobs
from rlpt.models import get_model_config, init_params
from rlpt.rewards.host_callback import host_reward_callback
from rlpt.step import (fused_step, make_fused_step, make_split_step,
                       rollout_phase)
from rlpt.build import build_rl, build_task, host_reward_fn


def _setup(reward=None, **overrides):
    cfg = grpo_arith.get_config("size=nano")
    cfg.rl.batch_size = 4
    cfg.sampling.num_samples = 4
    for k, v in overrides.items():
        target = cfg
        for part in k.split(".")[:-1]:
            target = target[part]
        target[k.split(".")[-1]] = v
    cfg = validate(cfg)
    task = build_task(cfg)
    model_cfg = get_model_config("nano")
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    spec, state, hp, _ = build_rl(cfg, model_cfg, params, task, reward=reward)
    return cfg, task, params, spec, state, hp


def count_reward(tokens, mask, target, target_len):
    """A dense toy reward (share of completion tokens with an odd id) so a random model gets
    non-zero advantages; numpy and JAX versions agree exactly."""
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / np.maximum(mask.sum(1), 1)).astype(np.float32)


def device_count_reward(frozen, tokens, mask, target, target_len):
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / jnp.maximum(mask.sum(1), 1)).astype(jnp.float32), {}


def _leaves_equal(a, b, atol=0.0):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def test_fused_step_updates_and_reports():
    cfg, task, params, spec, state, hp = _setup(device_count_reward)
    step = make_fused_step(spec, donate=False)
    new, m = step(state, task.make_batch(0, 0, 4), hp)
    assert float(m["reward_std"]) > 0
    assert int(new.step) == 1
    for key in ("reward_mean", "reward_std", "accuracy", "kl", "clip_frac", "entropy_sampled",
                "response_len", "grad_norm", "zero_adv_group_frac", "loss"):
        assert key in m and np.isfinite(float(m[key])), key
    # one epoch, one minibatch: old_logp = sg(logp), so the ratio is exactly 1 and nothing clips
    assert float(m["ratio_mean"]) == 1.0 and float(m["clip_frac"]) == 0.0
    changed = [not np.array_equal(a, b) for a, b in
               zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(new.params))]
    assert any(changed)
    _leaves_equal(new.frozen["reference"], params)  # the reference stays frozen


def test_second_batch_and_new_hyperparameters_do_not_recompile():
    """Hyperparameters are data: a second batch, a new learning rate, beta, clip range or
    warm-up length run the same compiled program (traced once)."""
    cfg, task, params, spec, state, hp = _setup()
    traced = chex.assert_max_traces(lambda s, b, h: fused_step(spec, s, b, h), n=1)
    step = jax.jit(traced)
    state, m0 = step(state, task.make_batch(0, 0, 4), hp)
    hp2 = jax.tree_util.tree_map(lambda x: x, hp)
    hp2["optim"]["lr"] = jnp.float32(3e-3)
    hp2["optim"]["warmup_steps"] = jnp.float32(1.0)
    hp2["algo"]["beta"] = jnp.float32(0.5)
    hp2["algo"]["eps_high"] = jnp.float32(0.3)
    state, _ = step(state, task.make_batch(0, 1, 4), hp)
    state2, m2 = step(state, task.make_batch(0, 2, 4), hp2)
    chex.clear_trace_counter()
    assert np.isfinite(float(m2["loss"]))


def test_hyperparameters_change_the_update_and_vmap_over_them():
    """A batch of `hp` (a sweep over learning rates) traces under `jax.vmap` and each row equals
    the step run alone with that `hp`."""
    cfg, task, params, spec, state, hp = _setup(device_count_reward)
    batch = task.make_batch(0, 0, 4)
    lrs = jnp.asarray([1e-4, 3e-3], jnp.float32)
    hps = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), hp)
    hps["optim"]["lr"] = lrs
    step = lambda h: fused_step(spec, state, batch, h)
    new_v, m_v = jax.jit(jax.vmap(step))(hps)
    for i in range(2):
        hp_i = jax.tree_util.tree_map(lambda x: x[i], hps)
        new_i, m_i = jax.jit(step)(hp_i)
        _leaves_equal(jax.tree_util.tree_map(lambda x: x[i], new_v.params), new_i.params,
                      atol=1e-6)
        np.testing.assert_allclose(float(m_v["grad_norm"][i]), float(m_i["grad_norm"]), rtol=1e-5)
    delta = [float(jnp.abs(jax.tree_util.tree_leaves(new_v.params)[0][i]
                           - jax.tree_util.tree_leaves(params)[0]).max()) for i in range(2)]
    assert delta[1] > 5 * delta[0]  # the larger learning rate moved the parameters further


def test_host_callback_and_split_step_match_device_reward():
    """A host reward (numpy) gives the same update as the same reward on device, both inside
    the jitted step (pure_callback) and between two programs (split)."""
    host = host_reward_callback(count_reward)
    results = []
    for kind in ("device", "callback", "split"):
        reward = device_count_reward if kind == "device" else (lambda fr, *a: host(*a))
        cfg, task, params, spec, state, hp = _setup(reward)
        step = make_split_step(spec, count_reward) if kind == "split" else \
            make_fused_step(spec, donate=False)
        for s in range(2):
            state, m = step(state, task.make_batch(0, s, 4), hp)
        results.append((state, float(m["reward_mean"])))
    assert results[0][1] > 0
    for state, r in results[1:]:
        _leaves_equal(state.params, results[0][0].params, atol=1e-6)
        assert r == results[0][1]


def test_task_host_reward_matches_device_reward():
    """The string-level reference reward used at the host boundary equals the device reward."""
    cfg, task, params, spec, state, hp = _setup()
    batch = task.make_batch(0, 0, 32)
    sol = batch["solution"].copy()
    sol[::3, 0] = (sol[::3, 0] - 3 + 1) % 10 + 3  # corrupt every third answer
    mask = batch["solution_mask"]
    want, _ = task.reward(jnp.asarray(sol), jnp.asarray(mask), batch["target"], batch["target_len"])
    got = host_reward_fn(task)(sol, mask, batch["target"], batch["target_len"])
    np.testing.assert_array_equal(got, np.asarray(want))
    assert 0 < got.mean() < 1


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_multi_step_equals_k_single_steps():
    cfg, task, params, spec, state, hp = _setup(device_count_reward)
    single = make_fused_step(spec, donate=False)
    multi = make_fused_step(spec, donate=False, iters_per_call=3)
    batches = [task.make_batch(0, s, 4) for s in range(3)]
    s1 = state
    for b in batches:
        s1, m1 = single(s1, b, hp)
    s3, m3 = multi(state, {k: np.stack([b[k] for b in batches]) for k in batches[0]}, hp)
    assert int(s3.step) == 3 and m3["loss"].shape == (3,)
    _leaves_equal(s3.params, s1.params, atol=1e-6)


def test_ppo_epochs_and_minibatches():
    cfg, task, params, spec, state, hp = _setup(device_count_reward,
                                                **{"rl.ppo_epochs": 2, "rl.minibatches": 2})
    assert spec.multi_update
    state, m = make_fused_step(spec, donate=False)(state, task.make_batch(0, 0, 4), hp)
    assert np.isfinite(float(m["loss"]))
    # the first minibatch of the first epoch sees the behaviour policy itself; later ones do not
    assert float(m["ratio_mean"]) != 1.0


def test_rng_is_fold_in_of_step():
    """The same state at the same step draws the same completions (what exact resume needs)."""
    cfg, task, params, spec, state, hp = _setup()
    batch = task.make_batch(0, 0, 4)
    rollout = jax.jit(lambda s: rollout_phase(spec, s, batch, hp)[1])
    a, b = rollout(state), rollout(state)
    c = rollout(state.replace(step=jnp.int32(1)))
    np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    assert not np.array_equal(np.asarray(a.logprobs), np.asarray(c.logprobs))


def test_kl_term_is_a_static_flag():
    """Whether the KL term exists is decided once from the config (beta > 0 by default), not by
    the traced value: beta=0 with kl_term=True keeps the reference and the `kl` metric; a
    non-zero beta with kl_term=False is refused."""
    cfg, task, params, spec, state, hp = _setup(**{"algo.beta": 0.0, "algo.kl_term": True})
    assert "kl" in [p.name for p in spec.chain] and "reference" in state.frozen
    _, m = make_fused_step(spec, donate=False)(state, task.make_batch(0, 0, 4), hp)
    assert "kl" in m
    cfg, task, params, spec, state, hp = _setup(**{"algo.beta": 0.0})
    assert "kl" not in [p.name for p in spec.chain] and "reference" not in state.frozen
    with pytest.raises(ValueError, match="algo.kl_term"):
        _setup(**{"algo.beta": 0.04, "algo.kl_term": False})


def test_shared_prompt_logprobs_and_grads_equal_full_forward():
    """Computing each prompt once per group of G rows (prefill + one pass over all completion
    tokens) gives the full forward's completion log-probs and parameter gradients, with
    left-padded prompts of different lengths and ragged completions."""
    cfg = get_model_config("nano")
    params = init_params(cfg, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    B, G, P, T = 3, 4, 6, 7
    plen = np.array([6, 3, 1])
    pvalid = np.arange(P)[None] >= (P - plen)[:, None]
    prompt = np.where(pvalid, rng.integers(3, cfg.vocab_size, (B, P)), 0)
    clen = rng.integers(1, T + 1, B * G)
    cvalid = np.arange(T)[None] < clen[:, None]
    comp = np.where(cvalid, rng.integers(3, cfg.vocab_size, (B * G, T)), 0)
    tokens = jnp.asarray(np.concatenate([np.repeat(prompt, G, 0), comp], 1))
    valid = jnp.asarray(np.concatenate([np.repeat(pvalid, G, 0), cvalid], 1))
    mask = jnp.asarray(cvalid, jnp.float32)

    @functools.partial(jax.jit, static_argnums=2)   # jitted: eager autodiff took ~35 s
    @functools.partial(jax.value_and_grad, has_aux=True)
    def loss(p, tokens, group_size):
        lp = completion_logprobs(cfg, p, tokens, valid, P, 0.7, group_size=group_size)[0]
        return jnp.sum(lp * mask), lp

    (l_full, lp_full), g_full = loss(params, tokens, 1)
    (l_shared, lp_shared), g_shared = loss(params, tokens, G)
    np.testing.assert_allclose(np.asarray(lp_shared * mask), np.asarray(lp_full * mask),
                               atol=2e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_full), jax.tree_util.tree_leaves(g_shared)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-5, rtol=1e-4)
    # the shared path really reads one prompt per group: a different prompt in row 1 is ignored
    bad = tokens.at[1, P - 1].set((tokens[0, P - 1] + 1) % cfg.vocab_size)
    lp_bad = loss(params, bad, G)[0][1]
    np.testing.assert_array_equal(np.asarray(lp_bad), np.asarray(lp_shared))


# ------------------------------------------------------------------ features compose, by chain

def _shift_rewards(spec, state, r_N, raw_N, out, c):
    """A test-only shaping: r + shift (a declared dynamic hyperparameter)."""
    return r_N + c.test_shift, {"test_shift_applied": jnp.float32(1.0)}


TEST_SHIFT = registry.register("shaping", "test_only_shift")(Piece(
    "test_only_shift", dynamic=frozenset({"test_shift"}), shape=_shift_rewards))


def test_a_new_shaping_piece_composes_without_editing_the_step():
    """A shaping written outside the library (one Piece, registered) runs in the chain the
    config names: the step applies it and its metric appears, its hyperparameter is dynamic
    (a new value is an argument, not a recompile), and the task reward stays the raw one."""
    cfg, task, params, spec, state, hp = _setup(
        device_count_reward, **{"algo.shaping": ("test_only_shift",), "algo.test_shift": 3.0})
    assert [p.name for p in spec.chain][0] == "test_only_shift"
    assert "test_shift" in hp["algo"] and "test_shift" not in spec.algo
    _, m = make_fused_step(spec, donate=False)(state, task.make_batch(0, 0, 4), hp)
    assert float(m["test_shift_applied"]) == 1.0
    np.testing.assert_allclose(float(m["reward_mean"]), float(m["task_reward_mean"]) + 3.0,
                               rtol=1e-6)


def test_step_source_names_no_algorithm_and_branches_on_no_feature():
    """rlpt/step.py imports only the record module of rlpt.algorithms, names no registered
    algorithm, piece or shaping, and has no `if` on the algorithm config (`c.<x>`,
    `spec.algo`)."""
    import ast
    import os
    from conftest import REPO_ROOT
    src = open(os.path.join(REPO_ROOT, "rlpt", "step.py")).read()
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("rlpt.algorithms"):
            assert node.module == "rlpt.algorithms.base", node.module
        if isinstance(node, (ast.If, ast.IfExp)):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            attrs = {n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute)}
            assert "c" not in names and "algo" not in attrs, ast.unparse(node.test)
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)}
    for kind in ("algorithm", "piece", "shaping"):
        named = strings & set(registry.names(kind))
        assert not named, (kind, named)

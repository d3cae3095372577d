"""The fused RL step: one program, exact ratio 1, host boundary paths, K iterations per call."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from rlpt.config import validate
from rlpt.models import get_model_config, init_params
from rlpt.rl_step import (RLStep, host_reward_callback, init_state, make_fused_step,
                          make_multi_step, make_optimizer, make_split_step)
from rlpt.train import build_task, host_reward_fn


def _setup(**overrides):
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
    opt = make_optimizer(cfg.optim)
    return cfg, task, model_cfg, params, opt


def count_reward(tokens, mask, target, target_len):
    """A dense toy reward (share of completion tokens with an odd id) so a random model gets
    non-zero advantages; numpy and JAX versions agree exactly."""
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / np.maximum(mask.sum(1), 1)).astype(np.float32)


def device_count_reward(tokens, mask, target, target_len):
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / jnp.maximum(mask.sum(1), 1)).astype(jnp.float32), {}


def _state(params, opt, cfg, rl):
    return init_state(params, opt, cfg.seed, with_ref=rl.need_ref)


def _leaves_equal(a, b, atol=0.0):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def test_fused_step_updates_and_reports():
    cfg, task, model_cfg, params, opt = _setup()
    rl = RLStep(model_cfg, cfg, opt, device_count_reward)
    step = make_fused_step(rl, donate=False)
    state = _state(params, opt, cfg, rl)
    new, m = step(state, task.make_batch(0, 0, 4))
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
    assert _leaves_equal(new.ref_params, params) is None  # reference stays frozen


def test_second_batch_does_not_recompile():
    cfg, task, model_cfg, params, opt = _setup()
    rl = RLStep(model_cfg, cfg, opt, task.reward)
    traced = chex.assert_max_traces(rl.fused, n=1)
    step = jax.jit(traced)
    state = _state(params, opt, cfg, rl)
    state, _ = step(state, task.make_batch(0, 0, 4))
    state, _ = step(state, task.make_batch(0, 1, 4))
    chex.clear_trace_counter()


def test_host_callback_and_split_step_match_device_reward():
    """A host reward (numpy) gives the same update as the same reward on device, both inside
    the jitted step (pure_callback) and between two programs (split)."""
    cfg, task, model_cfg, params, opt = _setup()
    results = []
    for kind in ("device", "callback", "split"):
        reward = device_count_reward if kind == "device" else host_reward_callback(count_reward)
        rl = RLStep(model_cfg, cfg, opt, reward)
        state = _state(params, opt, cfg, rl)
        step = make_split_step(rl, count_reward) if kind == "split" else \
            make_fused_step(rl, donate=False)
        for s in range(2):
            state, m = step(state, task.make_batch(0, s, 4))
        results.append((state, float(m["reward_mean"])))
    assert results[0][1] > 0
    for state, r in results[1:]:
        _leaves_equal(state.params, results[0][0].params, atol=1e-6)
        assert r == results[0][1]


def test_task_host_reward_matches_device_reward():
    """The string-level reference reward used at the host boundary equals the device reward."""
    cfg, task, model_cfg, params, opt = _setup()
    batch = task.make_batch(0, 0, 32)
    sol = batch["solution"].copy()
    sol[::3, 0] = (sol[::3, 0] - 3 + 1) % 10 + 3  # corrupt every third answer
    mask = batch["solution_mask"]
    want, _ = task.reward(jnp.asarray(sol), jnp.asarray(mask), batch["target"], batch["target_len"])
    got = host_reward_fn(task)(sol, mask, batch["target"], batch["target_len"])
    np.testing.assert_array_equal(got, np.asarray(want))
    assert 0 < got.mean() < 1


def test_multi_step_equals_k_single_steps():
    cfg, task, model_cfg, params, opt = _setup()
    rl = RLStep(model_cfg, cfg, opt, device_count_reward)
    single = make_fused_step(rl, donate=False)
    multi = make_multi_step(rl, 3, donate=False)
    batches = [task.make_batch(0, s, 4) for s in range(3)]
    s1 = _state(params, opt, cfg, rl)
    for b in batches:
        s1, m1 = single(s1, b)
    s3, m3 = multi(_state(params, opt, cfg, rl),
                   {k: np.stack([b[k] for b in batches]) for k in batches[0]})
    assert int(s3.step) == 3 and m3["loss"].shape == (3,)
    _leaves_equal(s3.params, s1.params, atol=1e-6)


def test_ppo_epochs_and_minibatches():
    cfg, task, model_cfg, params, opt = _setup(**{"rl.ppo_epochs": 2, "rl.minibatches": 2})
    rl = RLStep(model_cfg, cfg, opt, device_count_reward)
    assert rl.multi_update
    state, m = make_fused_step(rl, donate=False)(_state(params, opt, cfg, rl),
                                                 task.make_batch(0, 0, 4))
    assert np.isfinite(float(m["loss"]))
    # the first minibatch of the first epoch sees the behaviour policy itself; later ones do not
    assert float(m["ratio_mean"]) != 1.0


def test_rng_is_fold_in_of_step():
    """The same state at the same step draws the same completions (what exact resume needs)."""
    cfg, task, model_cfg, params, opt = _setup()
    rl = RLStep(model_cfg, cfg, opt, task.reward)
    state = _state(params, opt, cfg, rl)
    batch = task.make_batch(0, 0, 4)
    a = jax.jit(rl.rollout)(state, batch)
    b = jax.jit(rl.rollout)(state, batch)
    c = jax.jit(rl.rollout)(state.replace(step=jnp.int32(1)), batch)
    np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    assert not np.array_equal(np.asarray(a.logprobs), np.asarray(c.logprobs))


def test_shared_prompt_logprobs_and_grads_equal_full_forward():
    """Computing each prompt once per group of G rows (prefill + one pass over all completion
    tokens) gives the full forward's completion log-probs and parameter gradients, with
    left-padded prompts of different lengths and ragged completions."""
    from rlpt.rl_step import completion_logprobs
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

    def loss(p, group_size):
        lp = completion_logprobs(cfg, p, tokens, valid, P, 0.7, group_size=group_size)[0]
        return jnp.sum(lp * mask), lp

    (l_full, lp_full), g_full = jax.value_and_grad(loss, has_aux=True)(params, 1)
    (l_shared, lp_shared), g_shared = jax.value_and_grad(loss, has_aux=True)(params, G)
    np.testing.assert_allclose(np.asarray(lp_shared * mask), np.asarray(lp_full * mask),
                               atol=2e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_full), jax.tree_util.tree_leaves(g_shared)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-5, rtol=1e-4)
    # the shared path really reads one prompt per group: a different prompt in row 1 is ignored
    bad = tokens.at[1, P - 1].set((tokens[0, P - 1] + 1) % cfg.vocab_size)
    lp_bad = completion_logprobs(cfg, params, bad, valid, P, 0.7, group_size=G)[0]
    np.testing.assert_array_equal(np.asarray(lp_bad), np.asarray(lp_shared))

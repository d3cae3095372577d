"""Kimi k1.5 (rlpt/algorithms/kimi_k15.py): the mirror-descent loss and its gradient, the
within-group length reward and the `kimi_length_penalty` shaping piece with its warm-up."""
import types

import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import cfg, lengths_mask, loss_and_grad, make_batch
from rlpt.algorithms.kimi_k15 import kimi_length_reward
from rlpt.registry import get


def test_kimi_k15_value_and_gradient():
    G, T, tau = 3, 4, 0.5
    b = make_batch(8, N=2 * G, T=T, spread=0.2)
    b["rewards"] = np.array([1.0, 0.0, 0.5, 1.0, 1.0, 0.0])
    m = b["mask"]
    r = b["rewards"].reshape(2, G)
    a = (r - r.mean(1, keepdims=True)).reshape(-1)
    x = ((b["logp"] - b["old_logp"]) * m).sum(1)
    for norm in (False, True):
        c = cfg(group_size=G, tau=tau, normalize_2tau=norm)
        with jax.enable_x64(True):
            loss, _, g = loss_and_grad("kimi_k15", b, c)
            _, _, g1 = loss_and_grad("kimi_k15", dict(b, logp=b["old_logp"]), c)
        scale = 1 / (2 * tau) if norm else 1.0
        np.testing.assert_allclose(loss, scale * np.mean((a - tau * x) ** 2), rtol=1e-10)
        expect = scale * (-2 * tau * (a - tau * x) / (2 * G))[:, None] * m
        np.testing.assert_allclose(g, expect, rtol=1e-9, atol=1e-15)
        # at ratio 1 with normalize_2tau the gradient is the paper's -(r - r_mean) grad logpi / N
        if norm:
            np.testing.assert_allclose(g1, -(a / (2 * G))[:, None] * m, rtol=1e-9, atol=1e-15)


def length_penalty(r, lengths, c, step=0, G=3):
    """The `kimi_length_penalty` shaping piece's hook (raw rewards = r) at RL step `step`: the
    shaped rewards (a jax array, so it also traces under jit)."""
    spec, state = types.SimpleNamespace(G=G), types.SimpleNamespace(step=step)
    out = types.SimpleNamespace(lengths=jnp.asarray(lengths))
    shaped, metrics = get("shaping", "kimi_length_penalty").shape(
        spec, state, jnp.asarray(r), jnp.asarray(r), out, c)
    assert metrics == {}
    return shaped


def test_kimi_length_reward_sanity():
    out = kimi_length_reward(jnp.array([100, 200, 300]), jnp.array([1, 1, 0]), 3)
    np.testing.assert_allclose(np.asarray(out), [0.5, 0.0, -0.5], atol=1e-6)
    same = kimi_length_reward(jnp.array([7, 7, 7]), jnp.array([1, 0, 1]), 3)
    np.testing.assert_array_equal(np.asarray(same), [0.0, 0.0, 0.0])
    # wrong answers get min(0, lambda): the shortest wrong answer is not rewarded
    wrong = kimi_length_reward(jnp.array([10, 30, 20]), jnp.array([0, 1, 0]), 3)
    np.testing.assert_allclose(np.asarray(wrong), [0.0, -0.5, 0.0], atol=1e-6)
    # group-wise min/max
    two = kimi_length_reward(jnp.array([1, 3, 100, 300]), jnp.array([1, 1, 1, 1]), 2)
    np.testing.assert_allclose(np.asarray(two), [0.5, -0.5, 0.5, -0.5], atol=1e-6)
    m = lengths_mask([2, 4, 3], 4)
    shaped = length_penalty([1.0, 1.0, 0.0], m.sum(1), cfg(group_size=3,
                                                             length_penalty_weight=0.5))
    np.testing.assert_allclose(shaped, [1.25, 0.75, -0.0], atol=1e-6)


def test_kimi_length_penalty_warm_up_switches_on_at_its_start_step():
    """The paper's warm-up (no penalty, then a constant one)."""
    lengths, r = [100, 200, 300], [1.0, 1.0, 0.0]
    algo = dict(length_penalty_weight=0.5, length_penalty_start=3)
    got = [length_penalty(r, lengths, algo, step) for step in (0, 2, 3, 7)]
    for g in got[:2]:
        np.testing.assert_array_equal(g, [1.0, 1.0, 0.0])
    for g in got[2:]:
        np.testing.assert_allclose(g, [1.25, 1.0, -0.25], atol=1e-6)
    dflt = length_penalty(r, lengths, dict(length_penalty_weight=0.5), 0)
    np.testing.assert_allclose(dflt, [1.25, 1.0, -0.25], atol=1e-6)
    # the start and the step as traced values (dynamic hyperparameter, step counter): same switch
    traced = jax.jit(lambda step, start: length_penalty(
        r, lengths, dict(length_penalty_weight=0.5, length_penalty_start=start), step))
    for step, want in ((2, [1.0, 1.0, 0.0]), (3, [1.25, 1.0, -0.25])):
        np.testing.assert_allclose(traced(jnp.int32(step), jnp.float32(3.0)), want, atol=1e-6)

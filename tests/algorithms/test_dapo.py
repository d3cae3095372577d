"""DAPO (rlpt/algorithms/dapo.py): the token-normalised loss with the dynamic-sampling keep mask,
the overlong penalty (eq. 13) and its two shaping pieces."""
import types

import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import cfg, lengths_mask, loss_and_grad, make_batch, np_agg, np_clip_tok
from rlpt.algorithms.dapo import dapo_overlong_penalty
from rlpt.config import default_algo
from rlpt.registry import get


def test_dapo_gradient_token_normalised_and_keep_mask():
    G, T = 3, 5
    b = make_batch(6, N=2 * G, T=T, lengths=[5, 2, 3, 4, 1, 5])
    b["logp"] = b["old_logp"].copy()
    r = np.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0])  # group 2 is degenerate
    A = np.asarray(get("advantage", "grpo")(jnp.asarray(r), None, cfg(group_size=G)))
    b["advantages"] = A
    m = b["mask"]
    with jax.enable_x64(True):
        loss, metrics, g = loss_and_grad("dapo", b, cfg(group_size=G))
    np.testing.assert_allclose(g, -A[:, None] / m.sum() * m, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(float(metrics["effective_groups"]), 2.0)
    # DAPO's keep mask: the dynamic-sampling piece (on in DAPO's defaults) over these rewards
    algo = default_algo("dapo")
    assert algo.dynamic_sampling
    spec = types.SimpleNamespace(G=G)
    data, _, ds_metrics = get("piece", "dynamic_sampling").extras(
        spec, None, None, None, {"rewards": jnp.asarray(r)}, jnp.asarray(r), algo, None)
    keep = np.asarray(data["keep"])
    np.testing.assert_array_equal(keep, [1, 1, 1, 0, 0, 0])
    assert float(ds_metrics["effective_groups"]) == 1.0
    b_keep = dict(b, keep=keep, logp=b["logp"] + 0.1 * np.sin(np.arange(T)))
    b_sub = {k: v[:G] for k, v in b_keep.items() if k != "keep"}
    with jax.enable_x64(True):
        loss_k, metrics_k, g_k = loss_and_grad("dapo", b_keep, cfg(group_size=G))
        loss_s, _, g_s = loss_and_grad("dapo", b_sub, cfg(group_size=G))
    assert np.all(g_k[G:] == 0.0)
    np.testing.assert_allclose(loss_k, loss_s, rtol=1e-12)
    np.testing.assert_allclose(g_k[:G], g_s, rtol=1e-12)
    np.testing.assert_allclose(float(metrics_k["effective_groups"]), 1.0)
    tok = np_clip_tok(b_keep["logp"], b["old_logp"], A[:, None] * m, 0.2, 0.28)
    np.testing.assert_allclose(loss_k, np_agg(tok, m * keep[:, None], "token_mean"), rtol=1e-10)


def shape(name, r, lengths, c, raw=None, G=3, step=0):
    """The shaping piece `name`'s hook on rewards `r` of completions of `lengths`."""
    spec, state = types.SimpleNamespace(G=G), types.SimpleNamespace(step=jnp.asarray(step))
    out = types.SimpleNamespace(lengths=jnp.asarray(lengths))
    raw = r if raw is None else raw
    shaped, metrics = get("shaping", name).shape(spec, state, jnp.asarray(r), jnp.asarray(raw),
                                                 out, c)
    assert metrics == {}
    return np.asarray(shaped)


def test_dapo_overlong_sanity_and_shaping():
    pen = dapo_overlong_penalty(jnp.array([16384, 18432, 20480, 20481, 100]), 20480, 4096)
    np.testing.assert_allclose(np.asarray(pen), [0.0, -0.5, -1.0, -1.0, 0.0], atol=1e-6)
    m = lengths_mask([3, 5, 6], 6)  # L_max=5, L_cache=2: 3 -> 0, 5 -> -1, 6 -> -1 (over)
    shaped = shape("dapo_overlong", [1.0, 1.0, -1.0], m.sum(1),
                   cfg(overlong_max=5, overlong_cache=2))
    np.testing.assert_allclose(shaped, [1.0, 0.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(dapo_overlong_penalty(jnp.array([4]), 5, 2)), [-0.5], atol=1e-6)
    # without the fields the paper's 20480 / 4096 apply
    np.testing.assert_allclose(shape("dapo_overlong", [1.0, 1.0, 0.0], [100, 18432, 30000],
                                     cfg()), [1.0, 0.5, -1.0], atol=1e-6)


def test_dapo_default_shaping_chain_pm1_then_overlong():
    algo = default_algo("dapo")
    assert tuple(algo.shaping) == ("dapo_reward_pm1", "dapo_overlong")
    algo.overlong_max, algo.overlong_cache = 5, 2
    raw = np.array([0.9, 0.0, 0.3])  # correct = raw > success_threshold (0)
    r = raw
    for name in algo.shaping:
        r = shape(name, r, [3, 5, 6], algo, raw=raw)
    np.testing.assert_allclose(r, [1.0, -2.0, 0.0], atol=1e-6)
    pm1 = shape("dapo_reward_pm1", raw, [3, 5, 6], cfg(reward_correct=2.0, reward_wrong=0.0,
                                                        success_threshold=0.5), raw=raw)
    np.testing.assert_array_equal(pm1, [2.0, 0.0, 0.0])

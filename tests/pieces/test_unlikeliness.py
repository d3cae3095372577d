"""Rewarding the Unlikely (rlpt/pieces/unlikeliness.py): the rank shaping vs numpy, its two
readings of the rank, the registered shaping piece's hook and the `unlikeliness` advantage."""
import os
import subprocess
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO_ROOT
from loss_refs import cfg, lengths_mask
from rlpt.pieces.unlikeliness import unlikeliness_advantages, unlikeliness_shaped_rewards
from rlpt.registry import get


def test_unlikeliness_sanity():
    r = jnp.array([1.0, 1.0, 0.0, 1.0])
    lp = jnp.array([-0.2, -0.5, -0.1, -0.9])
    shaped = unlikeliness_shaped_rewards(r, lp, 4, 0.25)
    np.testing.assert_allclose(np.asarray(shaped), [0.875, 0.9375, 0.0, 1.0], atol=1e-6)
    # the per-token old_logp whose masked mean is lp (padding must be ignored)
    m = lengths_mask([2, 3, 1, 2], 3)
    old = np.array(lp)[:, None] * m + (1 - m) * 5.0
    A = get("advantage", "unlikeliness")(r, jnp.asarray(m), cfg(group_size=4, beta_rank=0.25),
                                         old_logp=jnp.asarray(old))
    np.testing.assert_allclose(np.asarray(A)[:, 0], [0.365, 0.497, -1.491, 0.630], atol=1e-3)
    np.testing.assert_allclose(np.asarray(A), np.asarray(unlikeliness_advantages(
        r, jnp.asarray(old), jnp.asarray(m), 4, 0.25))[:, None] * m, atol=1e-6)
    # the shaping piece: the same ranks from the rollout's sampled log-probs and mask
    piece = get("shaping", "unlikeliness")
    out = types.SimpleNamespace(logprobs=jnp.asarray(old), mask=jnp.asarray(m))
    got, metrics = piece.shape(types.SimpleNamespace(G=4), types.SimpleNamespace(step=0), r, r,
                               out, cfg(beta_rank=0.25))
    np.testing.assert_allclose(np.asarray(got), [0.875, 0.9375, 0.0, 1.0], atol=1e-6)
    assert metrics == {} and "beta_rank" in piece.dynamic


def test_unlikeliness_matches_numpy_and_rank_among():
    rng = np.random.default_rng(6)
    r = rng.integers(0, 2, size=10).astype(float)
    lp = rng.normal(size=10)
    for among in ("group", "correct"):
        expect = np.empty(10)
        for b in range(2):
            idx = range(5 * b, 5 * b + 5)
            members = [j for j in idx if among == "group" or r[j] > 0]
            for i in idx:
                rank = sum(1 for j in members if lp[j] < lp[i])
                expect[i] = r[i] * (1 - 0.3 * rank / 5)
        got = unlikeliness_shaped_rewards(jnp.asarray(r), jnp.asarray(lp), 5, 0.3, among)
        np.testing.assert_allclose(np.asarray(got), expect, atol=1e-6)
    # the two readings differ when a wrong sample is less likely than a correct one
    r2, lp2 = jnp.array([1.0, 0.0]), jnp.array([-0.1, -0.9])
    g = unlikeliness_shaped_rewards(r2, lp2, 2, 0.5, "group")
    c = unlikeliness_shaped_rewards(r2, lp2, 2, 0.5, "correct")
    np.testing.assert_allclose([float(g[0]), float(c[0])], [0.75, 1.0])
    with pytest.raises(ValueError, match="rank_among"):
        unlikeliness_shaped_rewards(r2, lp2, 2, 0.5, "wrong")


def test_unlikeliness_advantage_found_by_name_in_a_fresh_process():
    """The registry finds a name by lookup (its module doc), without importing its module first."""
    code = ("from rlpt import registry; registry.get('advantage', 'unlikeliness'); "
            "assert 'unlikeliness' in registry.names('advantage')")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]

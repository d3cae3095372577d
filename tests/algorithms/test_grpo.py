"""GRPO (rlpt/algorithms/grpo.py): value and metrics vs numpy, the gradient at ratio 1 in closed
form (its config errors: test_registry.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import cfg, loss_and_grad, make_batch, np_agg, np_clip_tok, np_k3, to_jax
from rlpt.registry import get


def test_grpo_value_matches_numpy():
    b = make_batch(3, N=4, T=6, spread=0.4)
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2)
    tok = tok + 0.04 * np_k3(b["logp"], b["ref_logp"])
    with jax.enable_x64(True):
        loss, metrics = get("loss", "grpo")(to_jax(b), None)
    np.testing.assert_allclose(float(loss), np_agg(tok, b["mask"], "seq_mean_token_mean"),
                               rtol=1e-10)
    m = b["mask"]
    np.testing.assert_allclose(float(metrics["kl"]),
                               (np_k3(b["logp"], b["ref_logp"]) * m).sum() / m.sum(), rtol=1e-10)
    ratio = np.exp(b["logp"] - b["old_logp"])
    np.testing.assert_allclose(float(metrics["ratio_mean"]), (ratio * m).sum() / m.sum(),
                               rtol=1e-10)
    A = b["advantages"]
    clipped = (A > 0) & (ratio > 1.2) | (A < 0) & (ratio < 0.8)
    np.testing.assert_allclose(float(metrics["clip_frac"]), (clipped * m).sum() / m.sum(),
                               rtol=1e-10)
    assert 0 < float(metrics["clip_frac"]) < 1  # the example exercises both branches


def test_grpo_gradient_at_ratio_one_matches_closed_form():
    G, T, beta = 4, 6, 0.04
    b = make_batch(4, N=G, T=T, lengths=[6, 2, 4, 1])
    b["logp"] = b["old_logp"].copy()
    r = np.array([1.0, 0.0, 0.0, 1.0])
    A = get("advantage", "grpo")(jnp.asarray(r), jnp.asarray(b["mask"]), cfg(group_size=G))
    b["advantages"] = np.asarray(A, np.float64)
    with jax.enable_x64(True):
        _, _, g = loss_and_grad("grpo", b, cfg(beta=beta))
    L = b["mask"].sum(1, keepdims=True)
    dJ = (1 / (G * L)) * (b["advantages"] + beta * (np.exp(b["ref_logp"] - b["logp"]) - 1))
    np.testing.assert_allclose(g, -dJ * b["mask"], rtol=1e-9, atol=1e-14)


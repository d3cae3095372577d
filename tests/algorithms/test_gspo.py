"""GSPO and GSPO-token (rlpt/algorithms/gspo.py, gspo_token.py): the 99-token example of the
paper gets zero gradient, the value vs numpy, the closed-form gradient, and the equivalence of
the two."""
import jax
import numpy as np

from loss_refs import loss_and_grad, make_batch


def test_gspo_99_token_example_gets_zero_gradient():
    T = 100
    old = np.full((1, T), -1.0)
    logp = old + np.r_[np.full(99, 0.001), np.log(8.0)][None]
    b = dict(logp=logp, old_logp=old, mask=np.ones((1, T)), advantages=np.ones((1, T)))
    with jax.enable_x64(True):
        loss, metrics, g = loss_and_grad("gspo", b, None)
        _, _, g_tok = loss_and_grad("gspo_token", b, None)
        s = 1.0220234
        np.testing.assert_allclose(float(metrics["ratio_mean"]), s, rtol=1e-6)
        np.testing.assert_allclose(loss, -(1 + 4e-4), rtol=1e-12)
        assert np.all(g == 0.0) and np.all(g_tok == 0.0)
        assert float(metrics["clip_frac"]) == 1.0
        # A < 0: s > 1 is not clipped; gradient of -A s is -A s / |y| per token
        _, _, g_neg = loss_and_grad("gspo", dict(b, advantages=-np.ones((1, T))), None)
    np.testing.assert_allclose(g_neg, np.full((1, T), s / T), rtol=1e-6)


def test_gspo_value_and_gspo_token_equivalence():
    b = make_batch(7, N=6, T=5, spread=0.02)  # ratios near 1: some sequences clip, some not
    A_seq = b["advantages"][:, 0]
    m = b["mask"]
    s = np.exp(((b["logp"] - b["old_logp"]) * m).sum(1) / m.sum(1))
    per = np.maximum(-A_seq * s, -A_seq * np.clip(s, 1 - 3e-4, 1 + 4e-4))
    clipped = (A_seq > 0) & (s > 1 + 4e-4) | (A_seq < 0) & (s < 1 - 3e-4)
    assert 0 < clipped.sum() < 6
    with jax.enable_x64(True):
        loss, metrics, g = loss_and_grad("gspo", b, None)
        loss_t, _, g_t = loss_and_grad("gspo_token", b, None)
    np.testing.assert_allclose(loss, per.mean(), rtol=1e-10)
    np.testing.assert_allclose(float(metrics["clip_frac"]), clipped.mean(), rtol=1e-10)
    np.testing.assert_allclose(loss_t, loss, rtol=1e-10)
    np.testing.assert_allclose(g_t, g, rtol=1e-9, atol=1e-15)
    # closed-form GSPO gradient: unclipped sequences get -A s / (N |y|) per token, clipped get 0
    expect = np.where(clipped, 0.0, -A_seq * s / (6 * m.sum(1)))[:, None] * m
    np.testing.assert_allclose(g, expect, rtol=1e-9, atol=1e-15)

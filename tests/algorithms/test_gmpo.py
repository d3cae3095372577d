"""GMPO (rlpt/algorithms/gmpo.py): the sanity values of objectives.md §3 and the gradient of a
clipped token."""
import jax
import numpy as np

from loss_refs import loss_and_grad


def test_gmpo_sanity_values_and_clipped_token_gradient():
    old = np.full((2, 4), -1.0)
    logp = old + np.log([[1.0, 1.1, 0.9, 8.0], [1.0, 1.1, 0.9, 8.0]])
    A = np.array([[1.0] * 4, [-1.2] * 4])
    b = dict(logp=logp, old_logp=old, mask=np.ones((2, 4)), advantages=A)
    with jax.enable_x64(True):
        loss_pos, m_pos, g_pos = loss_and_grad("gmpo", {k: v[:1] for k, v in b.items()}, None)
        loss_neg, m_neg, g_neg = loss_and_grad("gmpo", {k: v[1:] for k, v in b.items()}, None)
        loss_both, _, _ = loss_and_grad("gmpo", b, None)
    np.testing.assert_allclose(float(m_pos["ratio_mean"]), 1.1024, atol=1e-4)
    np.testing.assert_allclose(loss_pos, -1.1024, atol=1e-4)
    np.testing.assert_allclose(float(m_neg["ratio_mean"]), 1.6776, atol=1e-4)
    np.testing.assert_allclose(-loss_neg, -2.013, atol=1e-3)
    np.testing.assert_allclose(loss_both, (loss_pos + loss_neg) / 2, rtol=1e-12)
    assert g_pos[0, 3] == 0.0  # the ln 8 token is clipped at +0.4 for A > 0
    np.testing.assert_allclose(g_pos[0, :3], -1.0 * 1.1023976 / 4, rtol=1e-6)
    np.testing.assert_allclose(g_neg[0], 1.2 * 1.6775725 / 4, rtol=1e-6)
    np.testing.assert_allclose(float(m_pos["clip_frac"]), 0.25)

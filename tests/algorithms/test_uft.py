"""UFT (rlpt/algorithms/uft.py): the hint-probability schedule, the binomial hint-length sampler
and the loss (GRPO + coef * hint NLL)."""
import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import make_batch, np_agg, np_clip_tok, np_k3, sft_part, to_jax
from rlpt.algorithms.uft import uft_hint_prob, uft_sample_hint_length
from rlpt.registry import get


def test_uft_hint_schedule_sanity():
    p = [float(uft_hint_prob(t)) for t in (0, 150, 300, 301, 500)]
    np.testing.assert_allclose(p, [0.95, 0.5, 0.05, 0.0, 0.0], atol=1e-6)


def test_uft_hint_length_sampler_is_binomial():
    key = jax.random.PRNGKey(0)
    n = jnp.tile(jnp.array([5, 3, 0]), 4000)
    l_early = np.asarray(uft_sample_hint_length(key, n, 150)).reshape(-1, 3)
    assert np.all(l_early <= np.array([5, 3, 0])) and np.all(l_early[:, 2] == 0)
    # Binomial(5, 0.5): mean 2.5, var 1.25 ; Binomial(3, 0.5): mean 1.5 (4000 draws: se ~0.02)
    np.testing.assert_allclose(l_early[:, 0].mean(), 2.5, atol=0.08)
    np.testing.assert_allclose(l_early[:, 0].var(), 1.25, atol=0.1)
    np.testing.assert_allclose(l_early[:, 1].mean(), 1.5, atol=0.08)
    l_start = np.asarray(uft_sample_hint_length(key, n, 0)).reshape(-1, 3)
    np.testing.assert_allclose(l_start[:, 0].mean(), 5 * 0.95, atol=0.05)
    assert np.all(np.asarray(uft_sample_hint_length(key, n, 301)) == 0)


def test_uft_loss_value():
    b = make_batch(14, N=4, T=5)
    b.update(sft_part(14))
    grpo_tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) + 0.04 * np_k3(
        b["logp"], b["ref_logp"])
    nll = -(b["sft_logp"] * b["sft_mask"]).sum() / b["sft_mask"].sum()
    with jax.enable_x64(True):
        loss, metrics = get("loss", "uft")(to_jax(b), None)
    np.testing.assert_allclose(float(metrics["hint_nll"]), nll, rtol=1e-10)
    np.testing.assert_allclose(float(loss), np_agg(grpo_tok, b["mask"], "seq_mean_token_mean")
                               + 1e-3 * nll, rtol=1e-10)

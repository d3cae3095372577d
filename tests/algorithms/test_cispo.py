"""CISPO (rlpt/algorithms/cispo.py, arXiv:2506.13585): a hand-computed value, a numpy reference,
and the stop-gradient on the clipped weight (its fused-step run through the generic step is in
test_zoo.py, which runs every registered algorithm)."""
import jax
import jax.numpy as jnp
import numpy as np

from rlpt import registry
from rlpt.algorithms.cispo import cispo_loss

LN2 = np.log(2.0)


def test_hand_computed_value_and_gradient():
    # one sequence, two tokens: ratios 2 and 0.5; eps_low=1 (no lower bound), eps_high=0.28
    # weights sg(clip(r)) = [1.28, 0.5]; A = 1; token loss -w * logp; token mean over 2 tokens
    logp = jnp.log(jnp.array([[0.5, 0.25]]))
    batch = {"logp": logp, "old_logp": jnp.log(jnp.array([[0.25, 0.5]])),
             "advantages": jnp.array([1.0]), "mask": jnp.ones((1, 2))}
    loss, m = cispo_loss(batch, None)
    want = (1.28 * LN2 + 0.5 * 2 * LN2) / 2  # = 0.790188
    np.testing.assert_allclose(float(loss), want, rtol=1e-6)
    np.testing.assert_allclose(float(loss), 0.7901876, rtol=1e-6)
    assert float(m["clip_frac"]) == 0.5  # the ratio 2 is clipped, 0.5 is not (no lower bound)
    # the weight is a constant: d loss / d logp = -w A / (number of tokens)
    grad = jax.grad(lambda lp: cispo_loss(dict(batch, logp=lp), None)[0])(logp)
    np.testing.assert_allclose(np.asarray(grad), [[-0.64, -0.25]], rtol=1e-6)


def numpy_cispo(logp, old, adv, mask, eps_low, eps_high):
    w = np.clip(np.exp(logp - old), 1 - eps_low, 1 + eps_high)
    return float((-(w * adv[:, None] * logp) * mask).sum() / mask.sum())


def test_matches_numpy_reference_with_ragged_masks():
    rng = np.random.default_rng(0)
    N, T = 6, 5
    logp = np.log(rng.uniform(0.05, 1.0, (N, T)))
    old = logp + rng.normal(0, 0.4, (N, T))
    adv = rng.normal(size=N)
    mask = (np.arange(T)[None] < rng.integers(1, T + 1, N)[:, None]).astype(np.float64)
    for eps_low, eps_high in ((1.0, 0.28), (0.2, 0.2)):
        got, _ = cispo_loss({"logp": jnp.asarray(logp, jnp.float32),
                             "old_logp": jnp.asarray(old, jnp.float32),
                             "advantages": jnp.asarray(adv, jnp.float32),
                             "mask": jnp.asarray(mask, jnp.float32)},
                            {"eps_low": eps_low, "eps_high": eps_high})
        np.testing.assert_allclose(float(got), numpy_cispo(logp, old, adv, mask, eps_low,
                                                           eps_high), rtol=1e-5)


def test_registered_as_a_loss_and_an_algorithm():
    assert registry.get("loss", "cispo") is cispo_loss
    assert registry.get("algorithm", "cispo").loss is cispo_loss

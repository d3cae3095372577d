"""KL estimators and loss aggregation modes against numpy references and objectives.md §0-1."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlpt.losses.aggregation import AGG_MODES, aggregate, completion_mask
from rlpt.losses.kl import kl


# ----------------------------------------------------------------------------- numpy references

def np_kl(logp, ref, kind, clamp=False):
    d = ref - logp
    if kind == "k1":
        return -d
    if kind == "k2":
        return 0.5 * d * d
    if clamp:
        d = np.clip(d, -20, 20)
    out = np.exp(d) - d - 1
    return np.minimum(out, 10) if clamp else out


def np_aggregate(l, m, mode, l_norm=None):
    N, T = l.shape
    if mode == "token_mean":
        return (l * m).sum() / max(m.sum(), 1)
    if mode == "seq_mean_token_sum_norm":
        return (l * m).sum() / (N * (T if l_norm is None else l_norm))
    per_seq = []
    for i in range(N):
        n = m[i].sum()
        if n == 0:
            continue
        s = sum(l[i, t] * m[i, t] for t in range(T))
        per_seq.append(s / n if mode == "seq_mean_token_mean" else s)
    return float(np.mean(per_seq)) if per_seq else 0.0


def random_mask(rng, N, T, empty_rows=()):
    lengths = rng.integers(1, T + 1, size=N)
    m = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)
    m[list(empty_rows)] = 0.0
    return m


# ------------------------------------------------------------------------------------------- KL

def test_kl_sanity_values():
    logp, ref = jnp.array(-1.0), jnp.array(-1.5)
    np.testing.assert_allclose(float(kl(logp, ref, "k1")), 0.5, atol=1e-6)
    np.testing.assert_allclose(float(kl(logp, ref, "k2")), 0.125, atol=1e-6)
    np.testing.assert_allclose(float(kl(logp, ref, "k3")), 0.10653, atol=1e-5)


@pytest.mark.parametrize("kind", ["k2", "k3"])
def test_kl_zero_and_zero_gradient_at_reference(kind):
    x = jnp.array([-0.3, -2.0, -5.0])
    assert np.all(np.asarray(kl(x, x, kind)) == 0.0)
    g = jax.grad(lambda lp: jnp.sum(kl(lp, x, kind)))(x)
    np.testing.assert_allclose(np.asarray(g), 0.0, atol=1e-7)


def test_k1_zero_value_and_zero_expected_gradient_at_reference():
    # k1 = logp - ref has pointwise d/dlogp = 1; its gradient w.r.t. the policy parameters is zero
    # only in expectation over on-policy samples: sum_a pi(a) grad_theta log pi(a) = 0.
    x = jnp.array([-0.3, -2.0, -5.0])
    assert np.all(np.asarray(kl(x, x, "k1")) == 0.0)
    np.testing.assert_allclose(np.asarray(jax.grad(lambda lp: jnp.sum(kl(lp, x, "k1")))(x)), 1.0)
    theta = jnp.array([0.2, -1.0, 0.7, 0.1])
    ref = jax.nn.log_softmax(theta)
    pi = np.exp(np.asarray(ref))
    jac = jax.jacobian(lambda th: kl(jax.nn.log_softmax(th), ref, "k1"))(theta)  # [a, theta]
    np.testing.assert_allclose(pi @ np.asarray(jac), 0.0, atol=1e-6)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_matches_numpy_and_closed_form_gradient(kind):
    rng = np.random.default_rng(0)
    logp = -rng.random((3, 5)) * 3
    ref = -rng.random((3, 5)) * 3
    with jax.enable_x64(True):
        out = kl(jnp.asarray(logp), jnp.asarray(ref), kind)
        np.testing.assert_allclose(np.asarray(out), np_kl(logp, ref, kind), rtol=1e-12)
        g_fn = jax.grad(lambda lp: jnp.sum(kl(lp, jnp.asarray(ref), kind)))
        g = np.asarray(g_fn(jnp.asarray(logp)))
    d = ref - logp
    closed = {"k1": np.ones_like(d), "k2": -d, "k3": 1.0 - np.exp(d)}[kind]
    np.testing.assert_allclose(g, closed, rtol=1e-10)


def test_kl_aliases_and_unknown():
    a, b = jnp.array([-1.0]), jnp.array([-2.0])
    for alias, kind in [("kl", "k1"), ("mse", "k2"), ("low_var_kl", "k3")]:
        np.testing.assert_array_equal(np.asarray(kl(a, b, alias)), np.asarray(kl(a, b, kind)))
    with pytest.raises(ValueError, match="k3"):
        kl(a, b, "k4")


def test_k3_verl_clamp():
    # d = ref - logp = 5 -> k3 = e^5 - 6 = 142.4 unclamped, 10 clamped, zero gradient when capped.
    logp, ref = jnp.array([-6.0, -1.0]), jnp.array([-1.0, -1.2])
    raw = np.asarray(kl(logp, ref, "k3", clamp=False))
    cl = np.asarray(kl(logp, ref, "k3", clamp=True))
    np.testing.assert_allclose(raw[0], np.exp(5.0) - 6.0, rtol=1e-5)
    assert cl[0] == 10.0
    np.testing.assert_allclose(cl[1], raw[1])  # in range: untouched
    g = np.asarray(jax.grad(lambda lp: jnp.sum(kl(lp, ref, "k3", clamp=True)))(logp))
    assert g[0] == 0.0 and g[1] != 0.0
    # d clamp to [-20, 20]: d = -30 gives exp(-20) + 20 - 1, not exp(-30) + 30 - 1.
    far = float(kl(jnp.array(0.0), jnp.array(-30.0), "k3", clamp=True))
    np.testing.assert_allclose(far, 10.0)  # 19 > 10 so the cap binds too
    with jax.enable_x64(True):
        mid = float(kl(jnp.array(0.0), jnp.array(-30.0), "k3", clamp=False))
    np.testing.assert_allclose(mid, np.exp(-30.0) + 29.0)


# ---------------------------------------------------------------------------------- aggregation

@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_matches_numpy(mode):
    rng = np.random.default_rng(1)
    l = rng.normal(size=(5, 7))
    m = random_mask(rng, 5, 7, empty_rows=(3,))
    with jax.enable_x64(True):
        got = float(aggregate(jnp.asarray(l), jnp.asarray(m), mode))
        got_norm = float(aggregate(jnp.asarray(l), jnp.asarray(m), mode, l_norm=11.0))
    np.testing.assert_allclose(got, np_aggregate(l, m, mode), rtol=1e-12)
    np.testing.assert_allclose(got_norm, np_aggregate(l, m, mode, 11.0), rtol=1e-12)


def test_aggregate_modes_differ():
    # rows of different length: the four modes must give four different numbers
    l = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    vals = [float(aggregate(jnp.asarray(l), jnp.asarray(m), mode)) for mode in AGG_MODES]
    np.testing.assert_allclose(vals, [10 / 4, (2 + 4) / 2, (6 + 4) / 2, 10 / 6], rtol=1e-6)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_empty_mask_is_zero_not_nan(mode):
    l = jnp.ones((2, 3))
    m = jnp.zeros((2, 3))
    assert float(aggregate(l, m, mode)) == 0.0
    g = jax.grad(lambda x: aggregate(x, m, mode))(l)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g) == 0.0)


def test_aggregate_gradients_closed_form():
    rng = np.random.default_rng(2)
    m = random_mask(rng, 4, 6, empty_rows=(1,))
    l = jnp.asarray(rng.normal(size=(4, 6)))
    mj = jnp.asarray(m)
    g_tok = np.asarray(jax.grad(lambda x: aggregate(x, mj, "token_mean"))(l))
    np.testing.assert_allclose(g_tok, m / m.sum(), rtol=1e-6)
    g_seq = np.asarray(jax.grad(lambda x: aggregate(x, mj, "seq_mean_token_mean"))(l))
    n_nonempty = (m.sum(1) > 0).sum()
    expect = m / np.maximum(m.sum(1, keepdims=True), 1) / n_nonempty
    np.testing.assert_allclose(g_seq, expect, rtol=1e-6)
    g_norm = np.asarray(jax.grad(lambda x: aggregate(x, mj, "seq_mean_token_sum_norm", 10.0))(l))
    np.testing.assert_allclose(g_norm, m / (4 * 10.0), rtol=1e-6)


def test_aggregate_unknown_mode_lists_modes():
    with pytest.raises(ValueError) as e:
        aggregate(jnp.ones((1, 1)), jnp.ones((1, 1)), "seq-mean-token-mean")
    for mode in AGG_MODES:
        assert mode in str(e.value)


def test_completion_mask_applies_keep():
    batch = {"mask": jnp.ones((3, 2)), "keep": jnp.array([1.0, 0.0, 1.0])}
    np.testing.assert_array_equal(np.asarray(completion_mask(batch)), [[1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(np.asarray(completion_mask({"mask": jnp.ones((3, 2))})),
                                  np.ones((3, 2)))

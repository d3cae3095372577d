"""Preference losses (rlpt/algorithms/<name>.py, shared math in rlpt.losses.preference) against
independent numpy references and the sanity values of objectives.md section 4."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ml_collections

from rlpt import registry
from rlpt.algorithms import cdpo, dpo, drpo, ipo, pre_dpo, rdpo, simpo

# The spec's sanity pair: h = (-10 + 11) - (-12 + 11.5) = 1.5
SANITY = dict(logp_w=-10.0, logp_l=-12.0, ref_w=-11.0, ref_l=-11.5, len_w=20.0, len_l=25.0)


def np_log_sig(x):
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def np_sig(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def as_batch(d):
    return {k: jnp.atleast_1d(jnp.asarray(v, jnp.float32)) for k, v in d.items()}


def random_batch(seed=0, b=8):
    rng = np.random.default_rng(seed)
    d = {k: rng.normal(-20.0, 4.0, size=b) for k in ("logp_w", "logp_l", "ref_w", "ref_l")}
    d["len_w"] = rng.integers(1, 40, size=b).astype(np.float64)
    d["len_l"] = rng.integers(1, 40, size=b).astype(np.float64)
    return d


def np_h(d):
    return (np.asarray(d["logp_w"]) - d["ref_w"]) - (np.asarray(d["logp_l"]) - d["ref_l"])


# numpy references, written from the formulas in objectives.md
def np_dpo(d, beta):
    return -np_log_sig(beta * np_h(d))


def np_cdpo(d, beta, eps):
    h = np_h(d)
    return -(1 - eps) * np_log_sig(beta * h) - eps * np_log_sig(-beta * h)


def np_rdpo(d, beta, eps):
    h = np_h(d)
    return (-(1 - eps) * np_log_sig(beta * h) + eps * np_log_sig(-beta * h)) / (1 - 2 * eps)


def np_ipo(d, tau):
    return (np_h(d) - 1.0 / (2 * tau)) ** 2


def np_simpo(d, beta, gamma):
    u = np.asarray(d["logp_w"]) / d["len_w"] - np.asarray(d["logp_l"]) / d["len_l"]
    return -np_log_sig(beta * u - gamma)


def defaults(name):
    """The paper defaults of preference algorithm `name` (its record's DEFAULTS) and `name`."""
    return ml_collections.ConfigDict(dict(name=name, **registry.get("algorithm", name).defaults))


def loss_of(name, d, **overrides):
    cfg = defaults(name)
    cfg.update(overrides)
    return registry.get("loss", name)(as_batch(d), cfg)


def test_registered_names():
    for name in ("dpo", "ipo", "cdpo", "rdpo", "simpo", "pre_dpo", "drpo"):
        assert callable(registry.get("loss", name))
        assert defaults(name).name == name
        assert registry.get("algorithm", name).loss is registry.get("loss", name)
    with pytest.raises(KeyError, match="known"):
        registry.get("algorithm", "nope")


def test_paper_defaults():
    assert defaults("dpo").beta == 0.1
    simpo = defaults("simpo")
    assert (simpo.beta, simpo.gamma) == (2.0, 0.5)
    drpo = defaults("drpo")
    assert (drpo.c, drpo.b, drpo.beta, drpo.is_weight) == (2.5, 0.5, 0.04, "clip")


@pytest.mark.parametrize("name,overrides,expected", [
    ("dpo", {}, 0.620957),
    ("cdpo", {"eps": 0.1}, 0.635957),
    ("rdpo", {"eps": 0.1}, 0.602207),
    ("ipo", {"tau": 0.1}, 12.25),
    ("simpo", {"beta": 2.0, "gamma": 0.5}, 0.999163),
])
def test_sanity_values(name, overrides, expected):
    loss, metrics = loss_of(name, SANITY, **overrides)
    assert float(loss) == pytest.approx(expected, abs=2e-6)
    assert float(metrics["loss"]) == pytest.approx(expected, abs=2e-6)


def test_dpo_weight_and_zero_margin():
    _, metrics = loss_of("dpo", SANITY)
    assert float(metrics["grad_weight"]) == pytest.approx(0.462570, abs=1e-6)
    assert float(metrics["margin"]) == pytest.approx(1.5)
    zero = dict(SANITY, logp_w=-11.0, logp_l=-11.5)  # h = 0
    loss, metrics = loss_of("dpo", zero)
    assert float(loss) == pytest.approx(math.log(2.0), abs=1e-6)
    assert float(metrics["grad_weight"]) == pytest.approx(0.5)


@pytest.mark.parametrize("name,ref,params", [
    ("dpo", np_dpo, dict(beta=0.3)),
    ("cdpo", np_cdpo, dict(beta=0.3, eps=0.2)),
    ("rdpo", np_rdpo, dict(beta=0.3, eps=0.2)),
    ("ipo", np_ipo, dict(tau=0.5)),
    ("simpo", np_simpo, dict(beta=2.5, gamma=0.3)),
])
def test_matches_numpy_on_random_batch(name, ref, params):
    d = random_batch(seed=1)
    loss, _ = loss_of(name, d, **params)
    assert float(loss) == pytest.approx(np.mean(ref(d, **params)), rel=1e-5)


def test_mask_drops_pairs():
    d = random_batch(seed=2)
    mask = np.array([1, 0, 1, 1, 0, 0, 1, 1], np.float32)
    loss, _ = loss_of("dpo", dict(d, mask=mask))
    assert float(loss) == pytest.approx(np.mean(np_dpo(d, 0.1)[mask > 0]), rel=1e-5)
    all_masked, _ = loss_of("dpo", dict(d, mask=np.zeros(8)))
    assert float(all_masked) == 0.0


# --- gradients against closed forms: grad l = -beta * weight * grad h ---------------------------


@pytest.mark.parametrize("per_pair,params,closed_form", [
    (dpo.dpo_losses, dict(beta=0.1), lambda h: -0.1 * np_sig(-0.1 * h)),
    (cdpo.cdpo_losses, dict(beta=0.5, eps=0.1),
     lambda h: -0.5 * (0.9 * np_sig(-0.5 * h) - 0.1 * np_sig(0.5 * h))),
    (rdpo.rdpo_losses, dict(beta=0.5, eps=0.1),
     lambda h: -0.5 * (0.9 * np_sig(-0.5 * h) + 0.1 * np_sig(0.5 * h)) / 0.8),
    (ipo.ipo_losses, dict(tau=0.1), lambda h: 2.0 * (h - 5.0)),
])
def test_grad_wrt_margin_closed_form(per_pair, params, closed_form):
    h = jnp.array([-20.0, -1.5, 0.0, 1.5, 7.0, 40.0])
    grad = jax.grad(lambda x: jnp.sum(per_pair(x, **params)[0]))(h)
    np.testing.assert_allclose(grad, closed_form(np.asarray(h)), rtol=1e-5, atol=1e-7)
    # the returned weight is -(1/beta) dl/dh (IPO: -dl/dh)
    scale = params.get("beta", 1.0)
    np.testing.assert_allclose(per_pair(h, **params)[1], -np.asarray(grad) / scale, rtol=1e-5,
                               atol=1e-7)


def test_dpo_grad_wrt_logps():
    """d/d logp_w of DPO = -beta sig(-beta h) / B; d/d logp_l = +beta sig(-beta h) / B."""
    d = random_batch(seed=3)
    cfg = defaults("dpo")
    batch = as_batch(d)

    def f(lw, ll):
        return dpo.dpo_loss(dict(batch, logp_w=lw, logp_l=ll), cfg)[0]

    g_w, g_l = jax.grad(f, argnums=(0, 1))(batch["logp_w"], batch["logp_l"])
    expected = -0.1 * np_sig(-0.1 * np_h(d)) / 8
    np.testing.assert_allclose(g_w, expected, rtol=1e-4)
    np.testing.assert_allclose(g_l, -expected, rtol=1e-4)
    # reference log-probs enter h too, but a caller stops their gradient; here they are inputs
    assert np.all(np.asarray(g_w) < 0)


def test_simpo_grad_closed_form():
    d = random_batch(seed=4)
    batch = as_batch(d)
    cfg = defaults("simpo")
    g_w = jax.grad(lambda lw: simpo.simpo_loss(dict(batch, logp_w=lw), cfg)[0])(batch["logp_w"])
    u = np.asarray(d["logp_w"]) / d["len_w"] - np.asarray(d["logp_l"]) / d["len_l"]
    expected = -2.0 / d["len_w"] * np_sig(0.5 - 2.0 * u) / 8
    np.testing.assert_allclose(g_w, expected, rtol=1e-4)


def test_rdpo_rejects_eps_half():
    with pytest.raises(ValueError, match="eps"):
        loss_of("rdpo", SANITY, eps=0.5)


def test_ipo_length_normalize():
    d = random_batch(seed=5)
    normed = {k: np.asarray(d[k]) / d["len_w"] for k in ("logp_w", "ref_w")}
    normed.update({k: np.asarray(d[k]) / d["len_l"] for k in ("logp_l", "ref_l")})
    loss, _ = loss_of("ipo", d, tau=0.5, length_normalize=True)
    assert float(loss) == pytest.approx(np.mean(np_ipo(normed, 0.5)), rel=1e-5)


# --- Pre-DPO -----------------------------------------------------------------------------------


def test_pre_dpo_with_guide_equal_to_sft_is_dpo():
    d = random_batch(seed=6)
    cfg = defaults("pre_dpo")
    batch = as_batch(dict(d, guide_w=d["ref_w"], guide_l=d["ref_l"]))
    loss_pre, m_pre = pre_dpo.pre_dpo_loss(batch, cfg)
    loss_dpo, m_dpo = dpo.dpo_loss(batch, defaults("dpo"))
    assert float(loss_pre) == float(loss_dpo)
    for k in m_dpo:
        assert float(m_pre[k]) == float(m_dpo[k]), k


def test_pre_dpo_uses_guide_as_reference():
    d = random_batch(seed=7)
    guide_w, guide_l = np.asarray(d["ref_w"]) + 3.0, np.asarray(d["ref_l"]) - 1.0
    loss, metrics = loss_of("pre_dpo", dict(d, guide_w=guide_w, guide_l=guide_l))
    guided = dict(d, ref_w=guide_w, ref_l=guide_l)
    assert float(loss) == pytest.approx(np.mean(np_dpo(guided, 0.1)), rel=1e-5)
    assert float(metrics["grad_weight"]) == pytest.approx(
        np.mean(np_sig(-0.1 * np_h(guided))), rel=1e-5)
    with pytest.raises(KeyError, match="guide_w"):
        loss_of("pre_dpo", d)


# --- DRPO --------------------------------------------------------------------------------------


def drpo_batch(seed=0, b=3, m=2, t=4):
    rng = np.random.default_rng(seed)
    mask = (rng.random((b, m, t)) < 0.8).astype(np.float32)
    mask[0, 1] = 0.0  # an absent online sample
    mask[-1, 0, 0] = 1.0  # at least one present sample
    return dict(
        logp_y1=rng.normal(-5, 1, b), ref_y1=rng.normal(-5, 1, b),
        Z=rng.integers(0, 2, b).astype(np.float32), g_y1=rng.random(b),
        g_online=rng.random((b, m)),
        logp_online_tok=rng.normal(-1.0, 0.3, (b, m, t)),
        ref_online_tok=rng.normal(-1.0, 0.3, (b, m, t)),
        mask_online=mask)


def np_drpo(d, beta, c, b_base, kl_agg="seq_mean_token_sum"):
    """numpy reference of the spec's DRPO surrogate value and its gradients (clip mode)."""
    w = np.clip(np.exp(d["logp_y1"] - d["ref_y1"]), 1 / c, c)
    is_coef = w * (d["Z"] - d["g_y1"])
    m = d["mask_online"]
    present = m.sum(-1) > 0
    logp_seq = (d["logp_online_tok"] * m).sum(-1)
    dm = ((d["g_online"] - b_base) * logp_seq)[present].mean()
    dd = d["ref_online_tok"] - d["logp_online_tok"]
    k3 = np.exp(dd) - dd - 1
    assert kl_agg == "seq_mean_token_sum"
    kl = (k3 * m).sum(-1)[present].mean()
    loss = -np.mean(is_coef * d["logp_y1"]) - dm + beta * kl
    n_b, n_s = len(d["Z"]), present.sum()
    grad_y1 = -is_coef / n_b
    grad_tok = (-(d["g_online"] - b_base)[..., None] / n_s
                + beta * (1.0 - np.exp(dd)) / n_s) * m
    return loss, is_coef, grad_y1, grad_tok


def test_drpo_is_coefficient_sanity():
    cfg = defaults("drpo")
    d = drpo_batch(b=1, m=2)
    d.update(logp_y1=np.array([-4.8]), ref_y1=np.array([-5.0]), Z=np.array([1.0]),
             g_y1=np.array([0.7]))
    _, metrics = drpo.drpo_loss(as_batch(d), cfg)
    assert float(metrics["is_coef"]) == pytest.approx(0.366421, abs=2e-6)


def test_drpo_value_and_gradients_match_numpy():
    cfg = defaults("drpo")
    d = drpo_batch(seed=1)
    batch = as_batch(d)
    loss, metrics = jax.jit(lambda bt: drpo.drpo_loss(bt, cfg))(batch)
    ref_loss, is_coef, grad_y1, grad_tok = np_drpo(d, cfg.beta, cfg.c, cfg.b)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-5)
    assert float(metrics["is_coef"]) == pytest.approx(is_coef.mean(), rel=1e-5, abs=1e-7)

    def f(y1, tok):
        return drpo.drpo_loss(dict(batch, logp_y1=y1, logp_online_tok=tok), cfg)[0]

    g_y1, g_tok = jax.grad(f, argnums=(0, 1))(batch["logp_y1"], batch["logp_online_tok"])
    np.testing.assert_allclose(g_y1, grad_y1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_tok, grad_tok, rtol=1e-4, atol=1e-7)
    # absent sample (all-zero mask) receives no gradient and does not enter the estimate
    assert np.all(np.asarray(g_tok)[0, 1] == 0.0)
    present = d["mask_online"].sum(-1) > 0
    assert float(metrics["dr_estimate"]) == pytest.approx(
        d["g_online"][present].mean() + is_coef.mean(), rel=1e-5)


def test_drpo_is_term_vanishes_when_g_equals_z():
    cfg = defaults("drpo")
    d = drpo_batch(seed=2)
    d["g_y1"] = d["Z"].copy()
    batch = as_batch(d)
    loss, metrics = drpo.drpo_loss(batch, cfg)
    assert float(metrics["is_coef"]) == 0.0
    g_y1 = jax.grad(lambda y1: drpo.drpo_loss(dict(batch, logp_y1=y1), cfg)[0])(batch["logp_y1"])
    assert np.all(np.asarray(g_y1) == 0.0)
    # ... so the loss does not depend on y1's log-prob at all
    shifted, _ = drpo.drpo_loss(dict(batch, logp_y1=batch["logp_y1"] + 3.0), cfg)
    assert float(shifted) == pytest.approx(float(loss), rel=1e-6)


@pytest.mark.parametrize("mode", ["clip", "self_normalized", "raw"])
def test_drpo_importance_weight_modes(mode):
    log_ratio = np.array([2.0, -2.0, 0.2, 0.0])
    w = np.asarray(drpo.importance_weights(jnp.asarray(log_ratio), jnp.zeros(4), mode, c=2.5))
    raw = np.exp(log_ratio)
    expected = {"clip": np.clip(raw, 0.4, 2.5), "raw": raw,
                "self_normalized": raw / raw.mean()}[mode]
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    if mode == "clip":
        np.testing.assert_allclose(w[:2], [2.5, 0.4])
    if mode == "self_normalized":  # masked entries are excluded from the normaliser
        mask = jnp.array([1.0, 1.0, 0.0, 0.0])
        w_m = np.asarray(drpo.importance_weights(jnp.asarray(log_ratio), jnp.zeros(4), mode,
                                              mask=mask))
        np.testing.assert_allclose(w_m[:2], raw[:2] / raw[:2].mean(), rtol=1e-5)


def test_drpo_unknown_modes_raise():
    d = as_batch(drpo_batch(seed=3))
    with pytest.raises(ValueError, match="is_weight"):
        drpo.drpo_loss(d, {"is_weight": "bogus"})
    with pytest.raises(ValueError, match="kl_agg"):
        drpo.drpo_loss(d, {"kl_agg": "bogus"})


@pytest.mark.parametrize("kl_agg", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"])
def test_drpo_kl_aggregation_modes(kl_agg):
    """With g == b and g == Z only the beta * KL term is left; check it per aggregation mode."""
    d = drpo_batch(seed=4)
    d["g_online"] = np.full_like(d["g_online"], 0.5)
    d["g_y1"] = d["Z"].copy()
    loss, metrics = drpo.drpo_loss(as_batch(d), {"kl_agg": kl_agg, "beta": 0.5})
    m = d["mask_online"]
    dd = d["ref_online_tok"] - d["logp_online_tok"]
    k3 = (np.exp(dd) - dd - 1) * m
    present = m.sum(-1) > 0
    expected = {
        "token_mean": k3.sum() / m.sum(),
        "seq_mean_token_mean": (k3.sum(-1)[present] / m.sum(-1)[present]).mean(),
        "seq_mean_token_sum": k3.sum(-1)[present].mean(),
    }[kl_agg]
    assert float(metrics["kl"]) == pytest.approx(expected, rel=1e-5)
    assert float(loss) == pytest.approx(0.5 * expected, rel=1e-5)


def test_partial_and_missing_config_use_defaults():
    batch = as_batch(SANITY)
    assert float(dpo.dpo_loss(batch, None)[0]) == pytest.approx(0.620957, abs=2e-6)
    assert float(cdpo.cdpo_loss(batch, {"eps": 0.1})[0]) == pytest.approx(0.635957, abs=2e-6)
    assert float(simpo.simpo_loss(batch, {})[0]) == pytest.approx(0.999163, abs=2e-6)
    beta_03, _ = dpo.dpo_loss(batch, {"beta": 0.3})
    assert float(beta_03) == pytest.approx(float(-np_log_sig(0.45)), rel=1e-6)

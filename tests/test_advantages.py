"""The shared advantage estimators (rlpt/advantages.py) against numpy references and objectives.md
§2. The shapings live with their algorithm or piece: DAPO's overlong penalty in
tests/algorithms/test_dapo.py, Kimi's length reward in tests/algorithms/test_kimi_k15.py, the
dynamic-sampling mask and the unlikeliness shaping in tests/pieces/."""
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rlpt import advantages as adv
from rlpt.registry import get, names


def cfg(**kw):
    return ml_collections.ConfigDict(kw)


def lengths_mask(lengths, T):
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.float64)


# ----------------------------------------------------------------------------- numpy references

def np_group_z(r, G, ddof, eps=1e-6):
    out = np.empty_like(r)
    for b in range(len(r) // G):
        g = r[b * G:(b + 1) * G]
        out[b * G:(b + 1) * G] = (g - g.mean()) / (g.std(ddof=ddof) + eps)
    return out


def np_whiten(x, m, eps=1e-8):
    vals = x[m > 0]
    mean = vals.mean()
    var = vals.var(ddof=1)
    return (x - mean) / np.sqrt(var + eps) * m


def np_gae(r, v, m, gamma, lam):
    """Masked GAE by explicit loops: skip masked positions when looking for t+1."""
    N, T = r.shape
    A = np.zeros_like(r)
    for i in range(N):
        valid = [t for t in range(T) if m[i, t] > 0]
        a_next, v_next = 0.0, 0.0
        for t in reversed(valid):
            delta = r[i, t] + gamma * v_next - v[i, t]
            a_next = delta + gamma * lam * a_next
            v_next = v[i, t]
            A[i, t] = a_next
    return A


# ------------------------------------------------------------------------------- outcome baselines

def test_grpo_sanity_both_ddof():
    r = jnp.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(adv.grpo_advantages(r, 4, ddof=1)),
                               [0.8660, -0.8660, -0.8660, 0.8660], atol=1e-4)
    np.testing.assert_allclose(np.asarray(adv.grpo_advantages(r, 4, ddof=0)),
                               [1.0, -1.0, -1.0, 1.0], atol=1e-5)


@pytest.mark.parametrize("ddof", [0, 1])
def test_grpo_matches_numpy_and_registered_wrapper(ddof):
    rng = np.random.default_rng(0)
    r = rng.normal(size=12)
    m = lengths_mask(rng.integers(1, 6, size=12), 5)
    with jax.enable_x64(True):
        out = np.asarray(adv.grpo_advantages(jnp.asarray(r), 4, ddof=ddof))
        reg = np.asarray(get("advantage", "grpo")(jnp.asarray(r), jnp.asarray(m),
                                                  cfg(group_size=4, ddof=ddof, eps=1e-6)))
        ns = types.SimpleNamespace(group_size=4, ddof=ddof, eps=1e-6)
        reg_ns = np.asarray(get("advantage", "grpo")(jnp.asarray(r), None, ns))
    np.testing.assert_allclose(out, np_group_z(r, 4, ddof), rtol=1e-10)
    np.testing.assert_allclose(reg, np_group_z(r, 4, ddof)[:, None] * m, rtol=1e-10)
    np.testing.assert_allclose(reg_ns, np_group_z(r, 4, ddof), rtol=1e-10)


def test_grpo_bad_group_size():
    with pytest.raises(ValueError, match="multiple"):
        adv.grpo_advantages(jnp.ones(5), 4)


def test_rloo_of_singleton_groups_is_zero_not_inf():
    r = jnp.asarray([1.0, 0.0, 0.5])
    a = adv.rloo_advantages(r, 1)
    assert np.all(np.isfinite(np.asarray(a)))
    np.testing.assert_array_equal(np.asarray(a), np.zeros(3))


def test_dr_grpo_and_rloo_match_numpy():
    rng = np.random.default_rng(1)
    r = rng.normal(size=9)
    dr = np.concatenate([g - g.mean() for g in r.reshape(3, 3)])
    rloo = np.array([r[i] - np.mean([r[j] for j in range(3 * (i // 3), 3 * (i // 3) + 3) if j != i])
                     for i in range(9)])
    np.testing.assert_allclose(np.asarray(adv.dr_grpo_advantages(jnp.asarray(r), 3)), dr, atol=1e-6)
    np.testing.assert_allclose(np.asarray(adv.rloo_advantages(jnp.asarray(r), 3)), rloo, atol=1e-6)
    # RLOO is the Dr.GRPO advantage scaled by G/(G-1)
    np.testing.assert_allclose(rloo, dr * 3 / 2, atol=1e-12)


def test_reinforce_pp_matches_numpy():
    rng = np.random.default_rng(2)
    r = rng.integers(0, 2, size=8).astype(float)
    m = lengths_mask(rng.integers(1, 7, size=8), 6)
    centered = np.concatenate([g - g.mean() for g in r.reshape(2, 4)])
    expect = np_whiten(centered[:, None] * m, m)
    with jax.enable_x64(True):
        got = np.asarray(adv.reinforce_pp_advantages(jnp.asarray(r), jnp.asarray(m), 4))
        reg = np.asarray(get("advantage", "reinforce_pp")(jnp.asarray(r), jnp.asarray(m),
                                                          cfg(group_size=4)))
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(reg, expect, rtol=1e-9, atol=1e-12)
    vals = got[m > 0]
    np.testing.assert_allclose([vals.mean(), vals.std(ddof=1)], [0.0, 1.0], atol=1e-6)


# ------------------------------------------------------------------------------------------- GAE

def test_gae_terminal_reward_sanity():
    # beta=0, V=0, gamma=lambda=1, terminal reward R: every unwhitened A_t = R.
    m = lengths_mask([5, 3, 1], 5)
    R = np.array([1.5, -2.0, 0.25])
    zeros = jnp.zeros((3, 5))
    r_NT = adv.kl_penalized_token_rewards(jnp.asarray(R), zeros, zeros, jnp.asarray(m), 0.0)
    A, ret = adv.gae(r_NT, zeros, jnp.asarray(m), 1.0, 1.0)
    np.testing.assert_allclose(np.asarray(A), R[:, None] * m, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), R[:, None] * m, atol=1e-6)


def test_gae_matches_numpy_with_gaps():
    rng = np.random.default_rng(3)
    r = rng.normal(size=(3, 6))
    v = rng.normal(size=(3, 6))
    m = lengths_mask([6, 4, 5], 6)
    m[0, 2] = 0.0  # a tool-output token in the middle is skipped
    with jax.enable_x64(True):
        A, ret = adv.gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(m), 0.9, 0.8)
    expect = np_gae(r, v, m, 0.9, 0.8)
    np.testing.assert_allclose(np.asarray(A), expect, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ret), (expect + v) * m, rtol=1e-10, atol=1e-12)


def test_kl_penalized_token_rewards_and_registered_gae():
    rng = np.random.default_rng(4)
    old = -rng.random((2, 4))
    ref = -rng.random((2, 4))
    m = lengths_mask([4, 2], 4)
    score = np.array([1.0, -1.0])
    expect = -0.1 * (old - ref) * m
    expect[0, 3] += 1.0
    expect[1, 1] += -1.0
    with jax.enable_x64(True):
        got = adv.kl_penalized_token_rewards(jnp.asarray(score), jnp.asarray(old), jnp.asarray(ref),
                                             jnp.asarray(m), 0.1)
        np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-12)
        v = rng.normal(size=(2, 4))
        reg = get("advantage", "gae")(jnp.asarray(score), jnp.asarray(m),
                                      cfg(gamma=0.95, lam=0.9, kl_coef=0.1, whiten=True),
                                      values=jnp.asarray(v), old_logp=jnp.asarray(old),
                                      ref_logp=jnp.asarray(ref))
    np.testing.assert_allclose(np.asarray(reg), np_whiten(np_gae(expect, v, m, 0.95, 0.9), m),
                               rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- process supervision

def test_grpo_process_supervision_matches_numpy():
    rng = np.random.default_rng(5)
    G, S, T = 3, 3, 8
    step_r = rng.normal(size=(2 * G, S))
    ends = np.sort(rng.integers(0, T, size=(2 * G, S)), axis=1)
    valid = rng.random((2 * G, S)) < 0.8
    valid[:, 0] = True
    m = lengths_mask(rng.integers(4, T + 1, size=2 * G), T)
    expect = np.zeros((2 * G, T))
    for b in range(2):
        rows = slice(b * G, (b + 1) * G)
        vals = step_r[rows][valid[rows]]
        mu, sd = vals.mean(), vals.std(ddof=1)
        for i in range(b * G, (b + 1) * G):
            for t in range(T):
                expect[i, t] = sum((step_r[i, k] - mu) / (sd + 1e-6)
                                   for k in range(S) if valid[i, k] and ends[i, k] >= t) * m[i, t]
    with jax.enable_x64(True):
        got = get("advantage", "grpo_process")(None, jnp.asarray(m), cfg(group_size=G),
                                               step_rewards=jnp.asarray(step_r),
                                               step_ends=jnp.asarray(ends),
                                               step_valid=jnp.asarray(valid))
    np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- GTPO / GRPO-S shaping

def test_gtpo_and_grpo_s_sanity():
    H = jnp.array([[2.0], [1.0], [0.5], [1.0]])
    r = jnp.array([1.0, 1.0, 0.0, 0.0])
    m = jnp.ones((4, 1))
    expect = [1.1333, 1.0667, -1.1333, -1.0667]
    tok = adv.gtpo_advantages(r, H, m, 4, norm="none")
    seq = adv.grpo_s_advantages(r, H, m, 4, norm="none")
    np.testing.assert_allclose(np.asarray(tok)[:, 0], expect, atol=1e-4)
    np.testing.assert_allclose(np.asarray(seq), expect, atol=1e-4)


def np_gtpo(r, H, m, G, a1, a2, norm):
    N, T = H.shape
    out = np.zeros((N, T))
    for b in range(N // G):
        rows = list(range(b * G, (b + 1) * G))
        succ = [i for i in rows if r[i] > 0]
        fail = [i for i in rows if r[i] <= 0]
        raw = np.zeros((N, T))
        for t in range(T):
            d = sum(m[k, t] for k in succ)
            h = sum(m[k, t] for k in fail)
            sH = sum(H[k, t] for k in succ if m[k, t])
            sInv = sum(1 / (H[k, t] + 1e-8) for k in fail if m[k, t])
            for i in rows:
                if not m[i, t]:
                    continue
                if r[i] > 0:
                    raw[i, t] = a1 * r[i] + a2 * H[i, t] / (sH + 1e-8) * d
                else:
                    raw[i, t] = -a1 - a2 * (1 / (H[i, t] + 1e-8)) / (sInv + 1e-8) * h
        sets = [succ, fail] if norm == "separate" else [rows]
        for s in sets:
            vals = np.array([raw[i, t] for i in s for t in range(T) if m[i, t]])
            if len(vals) == 0:
                continue
            mu, sd = vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.0
            for i in s:
                out[i] = (raw[i] - mu) / (sd + 1e-6) * m[i]
    return out


@pytest.mark.parametrize("norm", ["separate", "joint"])
def test_gtpo_matches_numpy(norm):
    rng = np.random.default_rng(7)
    G, T = 4, 5
    r = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    H = rng.random((2 * G, T)) + 0.1
    m = lengths_mask(rng.integers(1, T + 1, size=2 * G), T)
    with jax.enable_x64(True):
        got = get("advantage", "gtpo")(jnp.asarray(r), jnp.asarray(m),
                                       cfg(group_size=G, alpha1=1.0, alpha2=0.1,
                                           entropy_shaping_norm=norm), entropy=jnp.asarray(H))
    np.testing.assert_allclose(np.asarray(got), np_gtpo(r, H, m, G, 1.0, 0.1, norm),
                               rtol=1e-8, atol=1e-10)


def test_grpo_s_matches_numpy_separate():
    rng = np.random.default_rng(8)
    G, T = 4, 6
    r = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    H = rng.random((2 * G, T)) + 0.1
    m = lengths_mask(rng.integers(1, T + 1, size=2 * G), T)
    Hbar = (H * m).sum(1) / m.sum(1)
    expect = np.zeros(2 * G)
    for b in range(2):
        rows = list(range(b * G, (b + 1) * G))
        succ = [i for i in rows if r[i] > 0]
        fail = [i for i in rows if r[i] <= 0]
        raw = {}
        for i in succ:
            raw[i] = r[i] + 0.1 * Hbar[i] / sum(Hbar[k] for k in succ) * len(succ)
        for i in fail:
            raw[i] = -1 - 0.1 * (1 / Hbar[i]) / sum(1 / Hbar[k] for k in fail) * len(fail)
        for s in (succ, fail):
            vals = np.array([raw[i] for i in s])
            for i in s:
                expect[i] = (raw[i] - vals.mean()) / (vals.std(ddof=1) + 1e-6)
    with jax.enable_x64(True):
        got = adv.grpo_s_advantages(jnp.asarray(r), jnp.asarray(H), jnp.asarray(m), G)
    np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-6, atol=1e-8)


def test_entropy_shaping_zero_entropy_is_finite():
    H = jnp.zeros((4, 3))
    m = jnp.ones((4, 3))
    r = jnp.array([1.0, 0.0, 1.0, 0.0])
    for fn in (adv.gtpo_advantages, adv.grpo_s_advantages):
        assert np.all(np.isfinite(np.asarray(fn(r, H, m, 4))))


# ------------------------------------------------------------------------------------- registry

def test_every_registered_advantage_is_finite():
    rng = np.random.default_rng(9)
    N, T, G = 8, 6, 4
    r = jnp.asarray(rng.integers(0, 2, size=N).astype(np.float32))
    m = jnp.asarray(lengths_mask(rng.integers(1, T + 1, size=N), T).astype(np.float32))
    extras = dict(values=jnp.asarray(rng.normal(size=(N, T)), jnp.float32),
                  old_logp=-jnp.asarray(rng.random((N, T)), jnp.float32),
                  ref_logp=-jnp.asarray(rng.random((N, T)), jnp.float32),
                  entropy=jnp.asarray(rng.random((N, T)), jnp.float32),
                  step_rewards=jnp.asarray(rng.normal(size=(N, 2)), jnp.float32),
                  step_ends=jnp.asarray(np.tile([2, 5], (N, 1))),
                  step_valid=jnp.ones((N, 2), bool))
    assert set(names("advantage")) >= {
        "grpo", "dr_grpo", "rloo", "reinforce_pp", "gae", "grpo_process", "gtpo", "grpo_s"}
    for name in names("advantage"):
        fn = get("advantage", name)
        c = cfg(group_size=G, kl_coef=0.05)
        out = np.asarray(jax.jit(lambda r, m, ex: fn(r, m, c, **ex))(r, m, extras))
        assert out.shape in ((N,), (N, T)), name
        assert np.all(np.isfinite(out)), name


def test_registered_advantages_are_records_with_their_group_baseline():
    for name in ("grpo", "dr_grpo", "rloo", "reinforce_pp", "grpo_process", "gtpo", "grpo_s"):
        rec = get("advantage", name)
        assert isinstance(rec, adv.Advantage) and rec.group_baseline, name
    assert get("advantage", "gae").group_baseline == ""
    assert "G - 1" in get("advantage", "rloo").group_baseline
    # the record calls its function: the same result as the plain function
    r = jnp.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(get("advantage", "grpo")(r, None, cfg(group_size=4))),
                                  np.asarray(adv.grpo_advantages(r, 4)))
    np.testing.assert_array_equal(
        np.asarray(get("advantage", "dr_grpo").fn(r, None, cfg(group_size=4))),
        np.asarray(adv.dr_grpo_advantages(r, 4)))
    for gone in ("dapo_overlong", "dapo_dynamic_sampling", "kimi_length_penalty"):
        with pytest.raises(KeyError, match="known advantage names"):
            get("advantage", gone)   # shapings and pieces now, not advantages

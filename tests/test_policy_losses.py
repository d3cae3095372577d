"""Policy-gradient losses vs numpy references, objectives.md §3 sanity values and gradients."""
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import rlpt.advantages  # noqa: F401  (registers the advantage estimators)
import rlpt.losses  # noqa: F401  (registers every loss)
from rlpt.losses import policy
from rlpt.losses.defaults import ALGO_NAMES, default_algo_config, resolve
from rlpt.registry import get, names

LOSS_NAMES = ["ppo", "grpo", "dr_grpo", "dapo", "gspo", "gspo_token", "gmpo", "gtpo", "grpo_s",
              "kimi_k15", "kdrl", "exp_grpo", "mgrpo", "uft", "relift", "one_shot_rlvr", "sft"]


# ----------------------------------------------------------------------------- numpy references

def np_clip_tok(logp, old, A, el, eh, dual=None):
    ratio = np.exp(logp - old)
    l1 = -A * ratio
    l2 = -A * np.clip(ratio, 1 - el, 1 + eh)
    loss = np.maximum(l1, l2)
    if dual is not None:
        loss = np.where(A < 0, np.minimum(loss, -A * dual), loss)
    return loss


def np_k3(logp, ref):
    d = ref - logp
    return np.exp(d) - d - 1


def np_agg(l, m, mode, l_norm=None):
    if mode == "token_mean":
        return (l * m).sum() / m.sum()
    if mode == "seq_mean_token_sum_norm":
        return (l * m).sum() / (l.shape[0] * (l.shape[1] if l_norm is None else l_norm))
    rows = [i for i in range(l.shape[0]) if m[i].sum() > 0]
    per = [(l[i] * m[i]).sum() / (m[i].sum() if mode == "seq_mean_token_mean" else 1) for i in rows]
    return np.mean(per)


def lengths_mask(lengths, T):
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.float64)


def make_batch(seed, N=4, T=5, spread=0.3, lengths=None):
    rng = np.random.default_rng(seed)
    old = -rng.random((N, T)) * 2 - 0.1
    lengths = rng.integers(1, T + 1, size=N) if lengths is None else lengths
    return dict(logp=old + rng.normal(size=(N, T)) * spread, old_logp=old,
                ref_logp=old + rng.normal(size=(N, T)) * 0.2,
                advantages=np.repeat(rng.normal(size=(N, 1)), T, axis=1),
                mask=lengths_mask(lengths, T), entropy=rng.random((N, T)),
                rewards=rng.integers(0, 2, size=N).astype(np.float64),
                teacher_logp=old + rng.normal(size=(N, T)) * 0.3)


def to_jax(batch):
    return {k: jnp.asarray(v) for k, v in batch.items()}


def cfg(**kw):
    return ml_collections.ConfigDict(kw)


def loss_and_grad(name, batch, c):
    """(loss, metrics, d loss / d logp) of a registered loss, one jit."""
    fn = get("loss", name)
    jb = to_jax(batch)

    def f(lp):
        return fn({**jb, "logp": lp}, c)

    (loss, metrics), g = jax.jit(jax.value_and_grad(f, has_aux=True))(jb["logp"])
    return float(loss), metrics, np.asarray(g)


# ------------------------------------------------------------------------------------ PPO clip

def test_clipped_pg_token_loss_matches_numpy():
    b = make_batch(0, N=6, T=7, spread=0.6)
    A = np.random.default_rng(1).normal(size=(6, 7)) * 2
    with jax.enable_x64(True):
        out = policy.clipped_pg_token_loss(jnp.asarray(b["logp"]), jnp.asarray(b["old_logp"]),
                                           jnp.asarray(A), 0.2, 0.28, 3.0)
    np.testing.assert_allclose(np.asarray(out[0]),
                               np_clip_tok(b["logp"], b["old_logp"], A, 0.2, 0.28, 3.0), rtol=1e-12)


def test_clip_gradient_exactly_zero_where_clip_binds():
    ratio = np.array([1.5, 0.5, 0.5, 1.5, 5.0, 2.5, 1.1])
    A = np.array([1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 2.0])
    # clip binds for: A>0 & r>1.2 ; A<0 & r<0.8 ; dual clip binds for A<0 & r>3
    binds = np.array([True, False, True, False, True, False, False])
    old = np.full(7, -1.0)
    logp = old + np.log(ratio)

    def f(lp):
        return jnp.sum(policy.clipped_pg_token_loss(lp, jnp.asarray(old), jnp.asarray(A),
                                                    0.2, 0.2, 3.0)[0])

    with jax.enable_x64(True):
        g = np.asarray(jax.grad(f)(jnp.asarray(logp)))
        info = policy.clipped_pg_token_loss(jnp.asarray(logp), jnp.asarray(old), jnp.asarray(A),
                                            0.2, 0.2, 3.0)
    assert np.all(g[binds] == 0.0)
    np.testing.assert_allclose(g[~binds], (-A * ratio)[~binds], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(info[2]), [True, False, True, False, False, False,
                                                        False])
    np.testing.assert_array_equal(np.asarray(info[3]), [False] * 4 + [True, False, False])


def test_ppo_loss_with_value_head_matches_numpy():
    rng = np.random.default_rng(2)
    b = make_batch(2, N=4, T=6, spread=0.5)
    b.update(values=rng.normal(size=(4, 6)), old_values=rng.normal(size=(4, 6)),
             returns=rng.normal(size=(4, 6)))
    m = b["mask"]
    pg = np_agg(np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2, 3.0), m,
                "token_mean")
    vc = b["old_values"] + np.clip(b["values"] - b["old_values"], -0.2, 0.2)
    vf = 0.5 * np_agg(np.maximum((b["values"] - b["returns"]) ** 2, (vc - b["returns"]) ** 2), m,
                      "token_mean")
    with jax.enable_x64(True):
        loss, metrics = get("loss", "ppo")(to_jax(b), None)
    np.testing.assert_allclose(float(metrics["pg_loss"]), pg, rtol=1e-10)
    np.testing.assert_allclose(float(metrics["vf_loss"]), vf, rtol=1e-10)
    np.testing.assert_allclose(float(loss), pg + 0.5 * vf - 0.0, rtol=1e-10)


# ---------------------------------------------------------------------------------------- GRPO

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


def test_dr_grpo_gradient_independent_of_length():
    G, T = 4, 8
    b = make_batch(5, N=G, T=T, lengths=[8, 1, 3, 5])
    b["logp"] = b["old_logp"].copy()
    r = np.array([1.0, 0.0, 1.0, 0.0])
    b["advantages"] = np.asarray(
        get("advantage", "dr_grpo")(jnp.asarray(r), jnp.asarray(b["mask"]), cfg(group_size=G)))
    for l_norm in (None, 16.0):
        with jax.enable_x64(True):
            _, _, g = loss_and_grad("dr_grpo", b, cfg(l_norm=l_norm))
        norm = T if l_norm is None else l_norm
        expect = -(r - r.mean())[:, None] / (G * norm) * b["mask"]
        np.testing.assert_allclose(g, expect, rtol=1e-9, atol=1e-14)


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
    keep = np.asarray(get("advantage", "dapo_dynamic_sampling")(jnp.asarray(r), None,
                                                                cfg(group_size=G)))
    np.testing.assert_array_equal(keep, [1, 1, 1, 0, 0, 0])
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


# ---------------------------------------------------------------------------------------- GSPO

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


# ---------------------------------------------------------------------------------------- GMPO

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


# ------------------------------------------------------------------------------------ Kimi k1.5

def test_kimi_k15_value_and_gradient():
    G, T, tau = 3, 4, 0.5
    b = make_batch(8, N=2 * G, T=T, spread=0.2)
    b["rewards"] = np.array([1.0, 0.0, 0.5, 1.0, 1.0, 0.0])
    m = b["mask"]
    r = b["rewards"].reshape(2, G)
    a = (r - r.mean(1, keepdims=True)).reshape(-1)
    x = ((b["logp"] - b["old_logp"]) * m).sum(1)
    for norm in (False, True):
        c = cfg(group_size=G, tau=tau, normalize_2tau=norm)
        with jax.enable_x64(True):
            loss, _, g = loss_and_grad("kimi_k15", b, c)
            _, _, g1 = loss_and_grad("kimi_k15", dict(b, logp=b["old_logp"]), c)
        scale = 1 / (2 * tau) if norm else 1.0
        np.testing.assert_allclose(loss, scale * np.mean((a - tau * x) ** 2), rtol=1e-10)
        expect = scale * (-2 * tau * (a - tau * x) / (2 * G))[:, None] * m
        np.testing.assert_allclose(g, expect, rtol=1e-9, atol=1e-15)
        # at ratio 1 with normalize_2tau the gradient is the paper's -(r - r_mean) grad logpi / N
        if norm:
            np.testing.assert_allclose(g1, -(a / (2 * G))[:, None] * m, rtol=1e-9, atol=1e-15)


# ---------------------------------------------------------------------------------------- KDRL

def test_kd_beta_schedule():
    vals = [float(policy.kd_beta(t)) for t in (0, 40, 80, 1000)]
    np.testing.assert_allclose(vals, [5e-3, 3e-3, 1e-3, 1e-3], rtol=1e-5)


def test_kdrl_teacher_equals_student_is_grpo():
    b = make_batch(9, N=4, T=5, spread=0.4)
    b["teacher_logp"] = b["logp"].copy()  # grad flows only through logp; teacher is data
    c = cfg(group_size=4, kd_mask="none", beta=0.04)
    with jax.enable_x64(True):
        loss, metrics, g = loss_and_grad("kdrl", b, c)
        loss_g, _, g_g = loss_and_grad("grpo", b, cfg(loss_agg="token_mean", beta=0.04))
    np.testing.assert_allclose(loss, loss_g, rtol=1e-12)
    np.testing.assert_allclose(g, g_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(metrics["kd_beta"]), 5e-3, rtol=1e-6)


@pytest.mark.parametrize("mode", ["incorrect_response", "no_correct_in_group"])
def test_kdrl_value_with_reward_guided_mask(mode):
    G = 2
    b = make_batch(10, N=4, T=5, spread=0.3)
    b["rewards"] = np.array([1.0, 0.0, 0.0, 0.0])
    b["step"] = np.array(20)
    kd = {"incorrect_response": [0, 1, 1, 1], "no_correct_in_group": [0, 0, 1, 1]}[mode]
    kd = np.array(kd, float)
    beta_t = 5e-3 - 5e-5 * 20
    m = b["mask"]
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2)
    tok = tok + beta_t * 0.5 * (b["teacher_logp"] - b["logp"]) ** 2 * kd[:, None]
    with jax.enable_x64(True):
        loss, metrics = get("loss", "kdrl")(to_jax(b), cfg(group_size=G, kd_mask=mode))
    np.testing.assert_allclose(float(loss), np_agg(tok, m, "token_mean"), rtol=1e-9)
    np.testing.assert_allclose(float(metrics["kd_beta"]), beta_t, rtol=1e-6)


# ------------------------------------------------------------------------- two-part losses

def sft_part(seed, M=3, T2=4):
    rng = np.random.default_rng(seed)
    return dict(sft_logp=-rng.random((M, T2)) * 3, sft_mask=lengths_mask([4, 2, 3], T2))


def test_exp_grpo_value_gradient_and_annealing():
    b = make_batch(11, N=4, T=5)
    b.update(sft_part(11))
    sm = b["sft_mask"]
    grpo_tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) + 0.04 * np_k3(
        b["logp"], b["ref_logp"])
    rl = np_agg(grpo_tok, b["mask"], "seq_mean_token_mean")
    loglik = (b["sft_logp"] * sm).sum(1).mean()
    fn = get("loss", "exp_grpo")
    with jax.enable_x64(True):
        jb = to_jax(b)
        loss, metrics = fn(jb, cfg(sft_coef=0.2))
        g = jax.grad(lambda s: fn({**jb, "sft_logp": s}, cfg(sft_coef=0.2))[0])(jb["sft_logp"])
        loss_ann, _ = fn({**jb, "step": jnp.array(30)}, cfg(sft_coef=0.2, sft_anneal_steps=40))
    np.testing.assert_allclose(float(loss), rl - 0.2 * loglik, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g), -0.2 / 3 * sm, rtol=1e-10)
    np.testing.assert_allclose(float(loss_ann), rl - 0.2 * 0.25 * loglik, rtol=1e-10)
    np.testing.assert_allclose(float(metrics["expl_loglik"]), loglik, rtol=1e-10)


def test_mgrpo_is_sum_of_two_grpo_losses():
    b1 = make_batch(12, N=4, T=5)
    b2 = make_batch(13, N=4, T=3)
    batch = dict(b1, **{f"layer2_{k}": v for k, v in b2.items()})
    with jax.enable_x64(True):
        loss, metrics = get("loss", "mgrpo")(to_jax(batch), None)
        l1, _ = get("loss", "grpo")(to_jax(b1), None)
        l2, _ = get("loss", "grpo")(to_jax(b2), None)
        loss_w, _ = get("loss", "mgrpo")(to_jax(batch), cfg(layer2_coef=0.5))
    np.testing.assert_allclose(float(loss), float(l1) + float(l2), rtol=1e-12)
    np.testing.assert_allclose(float(loss_w), float(l1) + 0.5 * float(l2), rtol=1e-12)
    assert float(l1) != float(l2)
    n1, n2 = b1["mask"].sum(), b2["mask"].sum()
    np.testing.assert_allclose(
        float(metrics["kl"]),
        (float(metrics["layer1_kl"]) * n1 + float(metrics["layer2_kl"]) * n2) / (n1 + n2))


def test_uft_hint_schedule_sanity():
    p = [float(policy.uft_hint_prob(t)) for t in (0, 150, 300, 301, 500)]
    np.testing.assert_allclose(p, [0.95, 0.5, 0.05, 0.0, 0.0], atol=1e-6)


def test_uft_hint_length_sampler_is_binomial():
    key = jax.random.PRNGKey(0)
    n = jnp.tile(jnp.array([5, 3, 0]), 4000)
    l_early = np.asarray(policy.uft_sample_hint_length(key, n, 150)).reshape(-1, 3)
    assert np.all(l_early <= np.array([5, 3, 0])) and np.all(l_early[:, 2] == 0)
    # Binomial(5, 0.5): mean 2.5, var 1.25 ; Binomial(3, 0.5): mean 1.5 (4000 draws: se ~0.02)
    np.testing.assert_allclose(l_early[:, 0].mean(), 2.5, atol=0.08)
    np.testing.assert_allclose(l_early[:, 0].var(), 1.25, atol=0.1)
    np.testing.assert_allclose(l_early[:, 1].mean(), 1.5, atol=0.08)
    l_start = np.asarray(policy.uft_sample_hint_length(key, n, 0)).reshape(-1, 3)
    np.testing.assert_allclose(l_start[:, 0].mean(), 5 * 0.95, atol=0.05)
    assert np.all(np.asarray(policy.uft_sample_hint_length(key, n, 301)) == 0)


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


def test_relift_rl_and_sft_losses():
    b = make_batch(15, N=4, T=6)
    b.pop("ref_logp")
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2)
    m = b["mask"]
    with jax.enable_x64(True):
        loss, metrics = get("loss", "relift")(to_jax(b), None)
        loss_sft, m_sft = get("loss", "relift_sft")(to_jax(b), None)
        loss_plain, _ = get("loss", "sft")(to_jax(b), None)
    assert "kl" not in metrics
    np.testing.assert_allclose(float(loss), np_agg(tok, m, "seq_mean_token_sum_norm"), rtol=1e-10)
    nll = -(b["logp"] * m).sum() / m.sum()
    ent = (b["entropy"] * m).sum() / m.sum()
    np.testing.assert_allclose(float(loss_sft), nll - 1e-3 * ent, rtol=1e-10)
    np.testing.assert_allclose(float(m_sft["nll"]), nll, rtol=1e-10)
    np.testing.assert_allclose(float(loss_plain), nll, rtol=1e-10)  # sft: entropy_coef 0


def test_one_shot_rlvr_value_and_ranking():
    b = make_batch(16, N=8, T=5)
    m = b["mask"]
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) + 1e-3 * np_k3(
        b["logp"], b["ref_logp"])
    expect = np_agg(tok, m, "token_mean") - 1e-3 * (b["entropy"] * m).sum() / m.sum()
    with jax.enable_x64(True):
        loss, _ = get("loss", "one_shot_rlvr")(to_jax(b), None)
    np.testing.assert_allclose(float(loss), expect, rtol=1e-10)
    with pytest.raises(KeyError, match="entropy"):
        get("loss", "one_shot_rlvr")(to_jax({k: v for k, v in b.items() if k != "entropy"}), None)
    hist = np.array([[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0.5, 0.5, np.nan, 0.5]])
    # variances (ddof=0): 0, 0.25, 0.25, 0 -> [1, 2, 0, 3]
    np.testing.assert_array_equal(policy.rank_examples_by_accuracy_variance(hist), [1, 2, 0, 3])


def test_grpo_s_and_gtpo_losses():
    b = make_batch(17, N=4, T=5, spread=0.4)
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.28)
    expect = np_agg(tok, b["mask"], "token_mean")
    b_noref = {k: v for k, v in b.items() if k != "ref_logp"}
    with jax.enable_x64(True):
        for name in ("gtpo", "grpo_s"):
            loss, _ = get("loss", name)(to_jax(b_noref), None)
            np.testing.assert_allclose(float(loss), expect, rtol=1e-10)
        c = cfg(ratio_level="sequence", loss_agg="seq_mean_token_mean")
        loss_seq, _ = get("loss", "grpo_s")(to_jax(b_noref), c)
        loss_gt, _ = get("loss", "gspo_token")(to_jax(b_noref), cfg(eps_low=0.2, eps_high=0.28))
    np.testing.assert_allclose(float(loss_seq), float(loss_gt), rtol=1e-12)


# ----------------------------------------------------------------------- configs and registry

def test_default_configs_hold_paper_defaults():
    assert set(LOSS_NAMES) <= set(ALGO_NAMES)
    c = default_algo_config("grpo")
    assert (c.beta, c.group_size, c.loss_agg, c.eps_low, c.ddof, c.eps) == (
        0.04, 64, "seq_mean_token_mean", 0.2, 1, 1e-6)
    c = default_algo_config("dapo")
    assert (c.eps_low, c.eps_high, c.loss_agg, c.beta) == (0.2, 0.28, "token_mean", 0.0)
    assert (c.overlong_max, c.overlong_cache) == (20480, 4096)
    assert default_algo_config("dr_grpo").loss_agg == "seq_mean_token_sum_norm"
    c = default_algo_config("gspo")
    assert (c.eps_low, c.eps_high, c.log_ratio_clamp) == (3e-4, 4e-4, 10.0)
    assert default_algo_config("gmpo").eps_low == 0.4
    assert default_algo_config("ppo").dual_clip == 3.0
    c = default_algo_config("kdrl")
    assert (c.kd_beta_init, c.kd_beta_min, c.kd_beta_delta) == (5e-3, 1e-3, 5e-5)
    c = default_algo_config("uft")
    assert (c.sft_coef, c.hint_p_low, c.hint_p_high, c.hint_steps) == (1e-3, 0.05, 0.95, 300)
    c = default_algo_config("one_shot_rlvr")
    assert (c.beta, c.kl_estimator, c.entropy_coef, c.group_size, c.temperature) == (
        1e-3, "k3", 1e-3, 8, 0.6)
    assert default_algo_config("gtpo").alpha2 == 0.1
    with pytest.raises(KeyError):
        default_algo_config("nope")
    # resolve overlays any attribute object on the defaults
    r = resolve(types.SimpleNamespace(beta=0.5), "grpo")
    assert (r.beta, r.group_size) == (0.5, 64)
    assert resolve({"eps_high": 0.3}, "dapo").eps_high == 0.3


def test_config_errors():
    with pytest.raises(ValueError, match="token_mean"):
        get("loss", "grpo")(to_jax(make_batch(18)), cfg(loss_agg="mean"))
    no_ref = {k: v for k, v in make_batch(18).items() if k != "ref_logp"}
    with pytest.raises(KeyError, match="ref_logp"):
        get("loss", "grpo")(to_jax(no_ref), None)  # beta = 0.04 needs the reference
    loss, metrics = get("loss", "grpo")(to_jax(no_ref), cfg(beta=0.0))
    assert np.isfinite(float(loss)) and "kl" not in metrics
    with pytest.raises(ValueError, match="kd_mask"):
        get("loss", "kdrl")(to_jax(make_batch(18)), cfg(kd_mask="sometimes", group_size=2))


def test_every_loss_builds_default_config_and_is_finite():
    assert set(LOSS_NAMES) <= set(names("loss"))
    b = make_batch(19, N=8, T=4, spread=0.5)
    rng = np.random.default_rng(19)
    b.update(values=rng.normal(size=(8, 4)), old_values=rng.normal(size=(8, 4)),
             returns=rng.normal(size=(8, 4)), keep=np.ones(8), step=np.array(3))
    b.update(sft_part(19))
    b.update({f"layer2_{k}": v for k, v in make_batch(20, N=8, T=3).items()})
    jb = {k: jnp.asarray(v, jnp.float32) if np.asarray(v).dtype.kind == "f" else jnp.asarray(v)
          for k, v in b.items()}
    for name in ALGO_NAMES:  # this module's losses (other families have their own defaults)
        c = default_algo_config(name)
        c.group_size = 4
        fn = get("loss", name)
        loss, metrics = jax.jit(lambda batch: fn(batch, c))(jb)  # also checks it traces under jit
        assert np.isfinite(float(loss)), name
        assert float(metrics["loss"]) == float(loss), name
        if name not in ("sft", "relift_sft"):
            for key in ("clip_frac", "ratio_mean", "kl"):
                assert key in metrics and np.isfinite(float(metrics[key])), (name, key)
    _, m_kd = get("loss", "kdrl")(jb, None)
    assert "kd_beta" in m_kd
    _, m_dapo = get("loss", "dapo")(jb, cfg(group_size=4))
    assert "effective_groups" in m_dapo

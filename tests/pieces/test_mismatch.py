"""The sampler / trainer mismatch (rlpt/losses/mismatch.py) and its corrections as pieces
(rlpt/pieces/mismatch.py: tis, icepop, seq_mis): the weight rules and metrics against numpy on
hand-made log-ratios; the pieces' hooks and their composition; the weighted surrogate against
numpy; every token-level policy-gradient loss reads the weight; through the fused step the
mismatch is ~0 in float32 (plain rollout at temperature 0.7, several updates, and a tool rollout
whose environment tokens stay out of the comparison) and each correction is a no-op there, while
bfloat16 compute shows a mismatch; config refusals name the key."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith, tool_calc
from loss_refs import (cfg, every_loss_batch, make_batch, np_agg, np_clip_tok, odd_token_reward,
                       to_jax)
from rlpt import registry
from rlpt.algorithms.base import rollout_logprobs
from rlpt.build import build_rl, build_task
from rlpt.config import default_algo, validate
from rlpt.errors import UserError
from rlpt.losses.mismatch import (band_mask, mismatch_metrics, sequence_band_mask,
                                  truncated_is_weight)
from rlpt.models import get_model_config, init_params
from rlpt.pieces.mismatch import UNWEIGHTED
from rlpt.step import make_fused_step, rewards_of, rollout_phase, update_phase

PIECES = ("tis", "icepop", "seq_mis")
MISMATCH = ("mismatch_logp_abs_mean", "mismatch_logp_abs_max", "mismatch_kl")


# ------------------------------------------------------------------ the rules vs numpy

def _hand_made():
    """Log-ratios d = trainer - sampler [3, 4], a mask, the sampler's log-probs."""
    d = np.array([[0.0, math.log(3.0), math.log(0.4), 1e-4],
                  [math.log(1.9), math.log(0.6), math.log(2.1), 0.0],
                  [1e-4, -1e-4, 5e-4, 7.0]], np.float32)
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0]], np.float32)
    sampler = -np.linspace(0.1, 2.0, 12, dtype=np.float32).reshape(3, 4)
    return d, mask, sampler


def test_rules_match_numpy():
    d, mask, _ = _hand_made()
    r = np.exp(d.astype(np.float64))
    np.testing.assert_allclose(np.asarray(truncated_is_weight(jnp.asarray(d), 2.0)),
                               np.minimum(r, 2.0), rtol=1e-6)
    # truncation at C: exactly C above it, the ratio below
    w = np.asarray(truncated_is_weight(jnp.asarray(d), 2.0))
    assert w[0, 1] == 2.0 and w[2, 3] == 2.0 and abs(w[0, 2] - 0.4) < 1e-6
    np.testing.assert_array_equal(np.asarray(band_mask(jnp.asarray(d), 0.5, 2.0)),
                                  ((r >= 0.5) & (r <= 2.0)).astype(np.float32))
    assert np.asarray(band_mask(jnp.asarray(d), 0.5, 2.0)).tolist() == [
        [1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 0]]
    # the geometric-mean ratio over the mask: row 2's masked 7.0 does not count
    geo = np.exp((d * mask).sum(1) / mask.sum(1))
    np.testing.assert_array_equal(np.asarray(sequence_band_mask(jnp.asarray(d), jnp.asarray(mask),
                                                                1 / 1.001, 1.001)),
                                  ((geo >= 1 / 1.001) & (geo <= 1.001)).astype(np.float32))
    assert np.asarray(sequence_band_mask(jnp.asarray(d), jnp.asarray(mask), 1 / 1.001,
                                         1.001)).tolist() == [0, 0, 1]
    # an empty row has ratio 1 (kept)
    assert float(sequence_band_mask(jnp.asarray(d[:1]), jnp.zeros((1, 4)), 0.9, 1.1)[0]) == 1.0


def test_mismatch_metrics_match_numpy():
    d, mask, sampler = _hand_made()
    trainer = sampler + d
    m = mismatch_metrics(jnp.asarray(trainer), jnp.asarray(sampler), jnp.asarray(mask))
    dd = (trainer - sampler).astype(np.float64)
    np.testing.assert_allclose(float(m["mismatch_logp_abs_mean"]),
                               (np.abs(dd) * mask).sum() / mask.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(m["mismatch_logp_abs_max"]),
                               (np.abs(dd) * mask).max(), rtol=1e-5)   # not the masked 7.0
    k3 = np.exp(dd) - 1 - dd       # k3 with r = trainer / sampler: KL(sampler || trainer)
    np.testing.assert_allclose(float(m["mismatch_kl"]), (k3 * mask).sum() / mask.sum(),
                               rtol=1e-5)
    zero = mismatch_metrics(jnp.asarray(sampler), jnp.asarray(sampler), jnp.asarray(mask))
    assert all(float(v) == 0.0 for v in zero.values())


# ------------------------------------------------------------------ the pieces' hooks

def _lb():
    d, mask, sampler = _hand_made()
    return {"old_logp": jnp.asarray(sampler + d), "sampler_logp": jnp.asarray(sampler),
            "mask": jnp.asarray(mask)}, d, mask


ALGO = cfg(tis_cap=2.0, mis_low=0.5, mis_high=2.0, seq_mis_low=1 / 1.001, seq_mis_high=1.001)


def test_piece_hooks_weights_and_metrics():
    lb, d, mask = _lb()
    r = np.exp(d.astype(np.float64))
    w, m = registry.get("piece", "tis").token_weight(None, lb, ALGO)
    np.testing.assert_allclose(np.asarray(w), np.minimum(r, 2.0), rtol=1e-5)
    np.testing.assert_allclose(float(m["tis_truncated_frac"]),
                               ((r > 2.0) * mask).sum() / mask.sum(), rtol=1e-6)
    np.testing.assert_allclose(float(m["tis_weight_mean"]),
                               (np.minimum(r, 2.0) * mask).sum() / mask.sum(), rtol=1e-5)
    w, m = registry.get("piece", "icepop").token_weight(None, lb, ALGO)
    band = (r >= 0.5) & (r <= 2.0)
    np.testing.assert_array_equal(np.asarray(w), band.astype(np.float32))
    np.testing.assert_allclose(float(m["icepop_masked_frac"]), ((~band) * mask).sum() / mask.sum(),
                               rtol=1e-6)
    w, m = registry.get("piece", "seq_mis").token_weight(None, lb, ALGO)
    np.testing.assert_array_equal(np.asarray(w), np.repeat([[0.0], [0.0], [1.0]], 4, axis=1))
    np.testing.assert_allclose(float(m["seq_mis_masked_frac"]), 2 / 3, rtol=1e-6)
    for name in PIECES:   # off by default, on by its switch, hyperparameters dynamic
        p = registry.get("piece", name)
        assert not p.active(default_algo("grpo")) and p.active(cfg(**{name: True}))
        assert p.dynamic and all(isinstance(p.defaults[k], float) for k in p.dynamic)
    with pytest.raises(KeyError, match="sampler_logp"):
        registry.get("piece", "tis").token_weight(None, {"old_logp": lb["old_logp"]}, ALGO)


def test_weighted_surrogate_matches_numpy_and_keeps_the_normaliser():
    """grpo's loss with `token_weight` = the tis x icepop product: the per-token surrogate times
    the weight, aggregated with the unchanged mask (the KL term unweighted)."""
    b = make_batch(3, N=4, T=5)
    rng = np.random.default_rng(3)
    d = rng.normal(0, 0.6, size=(4, 5))
    r = np.exp(d)
    w = np.minimum(r, 2.0) * ((r >= 0.5) & (r <= 2.0))
    c = cfg(beta=0.04, loss_agg="seq_mean_token_mean")
    loss, _ = registry.get("loss", "grpo")(to_jax(dict(b, token_weight=w)), c)
    k3 = np.exp(b["ref_logp"] - b["logp"]) - (b["ref_logp"] - b["logp"]) - 1
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) * w + 0.04 * k3
    np.testing.assert_allclose(float(loss), np_agg(tok, b["mask"], "seq_mean_token_mean"),
                               rtol=1e-5)
    # the pieces compose by product in the step: weights of tis and icepop from their hooks
    lb = {"old_logp": jnp.asarray(d, jnp.float32), "sampler_logp": jnp.zeros((4, 5)),
          "mask": jnp.asarray(b["mask"])}
    prod = (registry.get("piece", "tis").token_weight(None, lb, ALGO)[0]
            * registry.get("piece", "icepop").token_weight(None, lb, ALGO)[0])
    np.testing.assert_allclose(np.asarray(prod), w, rtol=1e-5)


def test_every_token_level_pg_loss_reads_the_weight():
    """Each policy-gradient algorithm outside UNWEIGHTED: weight 1 leaves loss and gradient
    as they are; weight 0 removes the policy-gradient term (the loss changes)."""
    jb = every_loss_batch()
    names = [n for n in registry.names("algorithm")
             if registry.get("algorithm", n).kind == "policy_gradient"]
    assert set(UNWEIGHTED) < set(names)
    checked = []
    for name in names:
        if name in UNWEIGHTED:
            continue
        c = default_algo(name)
        c.group_size = 4
        fn = registry.get("algorithm", name).loss
        f = jax.jit(jax.value_and_grad(lambda lp, w: fn(dict(jb, logp=lp, **w), c)[0]))
        base, g0 = f(jb["logp"], {})
        one, g1 = f(jb["logp"], {"token_weight": jnp.ones_like(jb["logp"])})
        zero, _ = f(jb["logp"], {"token_weight": jnp.zeros_like(jb["logp"])})
        np.testing.assert_allclose(float(one), float(base), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-6, atol=1e-9,
                                   err_msg=name)
        assert abs(float(zero) - float(base)) > 1e-6, name
        checked.append(name)
    assert {"grpo", "ppo", "dapo", "cispo", "gspo_token", "kdrl"} <= set(checked)


# ------------------------------------------------------------------ through the fused step

def _setup(base=None, **overrides):
    c = grpo_arith.get_config("size=nano") if base is None else base
    c.rl.batch_size, c.sampling.num_samples = 4, 4
    for k, v in overrides.items():
        *path, leaf = k.split(".")
        node = c
        for part in path:
            node = node[part]
        node[leaf] = v
    c = validate(c)
    task = build_task(c)
    model_cfg = get_model_config("nano", dtype=c.model.dtype)
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    spec, state, hp, _ = build_rl(c, model_cfg, params, task, reward=odd_token_reward)
    return spec, state, hp, task


def _run(**overrides):
    spec, state, hp, task = _setup(**overrides)
    new, m = make_fused_step(spec, donate=False)(state, task.make_batch(0, 0, 4), hp)
    return new, jax.device_get(m)


@pytest.fixture(scope="module")
def float32_run():
    """One fused step at temperature 0.7 (the sampler's and the trainer's log-probs must use the
    same one), no correction."""
    return _run(**{"sampling.temperature": 0.7})


def test_float32_mismatch_is_zero(float32_run):
    _, m0 = float32_run
    for k in MISMATCH:
        assert k in m0 and 0.0 <= m0[k] < 1e-5, (k, m0[k])


def test_float32_corrections_are_no_ops(float32_run):
    """All three on: every weight is 1 (up to the float32 rounding of the ratio), so loss,
    gradient and update are those without."""
    base_state, m0 = float32_run
    state, m = _run(**{"sampling.temperature": 0.7}, **{f"algo.{p}": True for p in PIECES})
    assert m["tis_truncated_frac"] == 0 and m["icepop_masked_frac"] == 0
    assert m["seq_mis_masked_frac"] == 0 and abs(m["tis_weight_mean"] - 1.0) < 1e-5
    for k in ("loss", "pg_loss", "grad_norm"):
        np.testing.assert_allclose(m[k], m0[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, b in zip(jax.tree_util.tree_leaves(state.params),
                    jax.tree_util.tree_leaves(base_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-7)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_several_updates_compare_with_the_pre_update_old_logp():
    _, m = _run(**{"rl.ppo_epochs": 2, "rl.minibatches": 2, "algo.tis": True})
    for k in MISMATCH:
        assert 0.0 <= m[k] < 1e-5, (k, m[k])
    assert m["tis_truncated_frac"] == 0 and abs(m["tis_weight_mean"] - 1.0) < 1e-5


def test_bfloat16_compute_shows_a_mismatch_and_the_corrections_run():
    spec, state, hp, task = _setup(**{"model.dtype": "bfloat16", "algo.tis": True,
                                      "algo.icepop": True, "algo.seq_mis": True})
    step = make_fused_step(spec, donate=False)
    batch = task.make_batch(0, 0, 4)
    m = jax.device_get(step(state, batch, hp)[1])
    assert m["mismatch_logp_abs_mean"] > 1e-5, m["mismatch_logp_abs_mean"]
    assert m["mismatch_logp_abs_max"] >= m["mismatch_logp_abs_mean"]
    assert m["mismatch_kl"] > 0 and np.isfinite(m["loss"])
    for k in ("tis_truncated_frac", "icepop_masked_frac", "seq_mis_masked_frac"):
        assert 0.0 <= m[k] <= 1.0, k
    # bands / cap tighter than the bf16 mismatch (dynamic: the same program) catch tokens
    tight = dict(hp["algo"], tis_cap=jnp.float32(1.0), mis_low=jnp.float32(1 - 1e-5),
                 mis_high=jnp.float32(1 + 1e-5), seq_mis_low=jnp.float32(1 - 1e-6),
                 seq_mis_high=jnp.float32(1 + 1e-6))
    mt = jax.device_get(step(state, batch, dict(hp, algo=tight))[1])
    assert mt["tis_truncated_frac"] > 0 and mt["tis_weight_mean"] < 1.0
    assert mt["icepop_masked_frac"] > 0 and mt["seq_mis_masked_frac"] > 0
    assert mt["mismatch_logp_abs_mean"] == m["mismatch_logp_abs_mean"]   # same rollout


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_tool_rollout_compares_model_tokens_only():
    """Tokens turned into environment tokens (mask 0, sampler log-prob 0, still in the
    teacher-forced rows, as a tool result is) stay out of the comparison."""
    spec, state, hp, task = _setup(tool_calc.get_config("size=nano"))

    @jax.jit
    def run(state, batch, hp):
        batch, out = rollout_phase(spec, state, batch, hp)
        raw, _ = rewards_of(spec, state, batch, out, hp)
        env = (jnp.arange(out.mask.shape[1]) % 3 == 1)[None, :] & (out.mask > 0)
        out = out._replace(mask=jnp.where(env, 0.0, out.mask),
                           logprobs=jnp.where(env, 0.0, out.logprobs),
                           tool_mask=jnp.where(env, 1.0, out.tool_mask))
        _, m = update_phase(spec, state, batch, out, raw, hp)
        # the comparison as it would be with the environment tokens in it
        tokens, valid = spec.rollout.teacher_inputs(batch, out, spec.G)
        lp = rollout_logprobs(spec, state.params, tokens, valid, batch["prompt"].shape[1])
        return m, mismatch_metrics(lp, out.logprobs, out.valid), env.sum()

    m, with_env, n_env = jax.device_get(run(state, task.make_batch(0, 0, 4), hp))
    assert n_env > 0
    for k in MISMATCH:
        assert 0.0 <= float(m[k]) < 1e-5, (k, float(m[k]))
    assert with_env["mismatch_logp_abs_max"] > 0.1


# ------------------------------------------------------------------ config refusals

@pytest.mark.parametrize("overrides,key", [
    ({"tis": True, "tis_cap": 0.0}, "algo.tis_cap"),
    ({"tis": True, "tis_cap": -1.0}, "algo.tis_cap"),
    ({"tis": True, "tis_cap": math.inf}, "algo.tis_cap"),
    ({"icepop": True, "mis_low": 2.0, "mis_high": 2.0}, "algo.mis_low"),
    ({"icepop": True, "mis_low": 3.0, "mis_high": 2.0}, "algo.mis_low"),
    ({"icepop": True, "mis_low": 1.2, "mis_high": 2.0}, "algo.mis_low/mis_high"),
    ({"seq_mis": True, "seq_mis_low": 1.01, "seq_mis_high": 1.0}, "algo.seq_mis_low"),
    ({"seq_mis": True, "seq_mis_high": 0.9999}, "algo.seq_mis_low/seq_mis_high"),
    ({"tis": True, "name": "gspo"}, "algo.tis"),
    ({"icepop": True, "name": "mgrpo"}, "algo.icepop"),
])
def test_refusals_name_the_key(overrides, key):
    c = grpo_arith.get_config("size=nano")
    if "name" in overrides:
        c.algo = default_algo(overrides.pop("name"))
    for k, v in overrides.items():
        c.algo[k] = v
    with pytest.raises(UserError, match=r"^config " + key.replace(".", r"\.") + ": "):
        validate(c)


def test_defaults_validate_and_are_off():
    c = validate(grpo_arith.get_config("size=nano"))
    assert not any(c.algo[p] for p in PIECES)
    assert (c.algo.tis_cap, c.algo.mis_low, c.algo.mis_high) == (2.0, 0.5, 2.0)
    spec, _, hp, _ = _setup()
    assert not any(p.name in PIECES for p in spec.chain)
    assert {"tis_cap", "mis_low", "mis_high", "seq_mis_low", "seq_mis_high"} <= set(hp["algo"])
    # an unsupported algorithm is fine while the corrections are off
    c = grpo_arith.get_config("size=nano")
    c.algo = default_algo("gspo")
    validate(c)

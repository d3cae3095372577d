"""Master weights as a config choice (rlpt.optim, `optim.master_dtype`): stochastic rounding is
unbiased and keeps the small updates round-to-nearest drops; bfloat16 master weights with
float32 moments still train (a linear model where round-to-nearest never moves a weight, and
SFT of the nano transformer through build_sft); float32 stays the untouched default path; the
refusals name the key."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import grpo_arith
from rlpt.build import build_sft, build_task
from rlpt.config import optim_config, validate
from rlpt.errors import UserError
from rlpt.models import get_model_config, init_params
from rlpt.optim import apply_update, make_optimizer, optim_hparams, stochastic_round
from rlpt.state import new_state

BF16, F32 = jnp.bfloat16, jnp.float32


def _sr_samples(x, n):
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: stochastic_round(x, k)))(keys).astype(F32))


def test_stochastic_rounding_is_unbiased_and_picks_a_neighbour():
    x = jnp.array([1.0 + 2.0 ** -10, -(1.0 + 3 * 2.0 ** -10), 0.1234567, -3.3e-3, 7.0, 0.0],
                  F32)
    s = _sr_samples(x, 20000)
    down = np.asarray(x.astype(BF16).astype(F32))   # round-to-nearest, for the bracket
    ulp = np.abs(np.asarray(x)) * 2.0 ** -7
    for j in range(x.shape[0]):
        vals = np.unique(s[:, j])
        assert len(vals) <= 2 and np.all(np.abs(vals - float(x[j])) <= ulp[j] + 1e-12), vals
        assert down[j] in vals or float(x[j]) == 0.0
    # E[SR(x)] = x: the sample mean within 5 standard errors (an ulp / 2 / sqrt(n) each)
    np.testing.assert_allclose(s.mean(0), np.asarray(x), rtol=0, atol=5 * ulp.max() / 2 / 141)
    # exactly representable values never move; infinities and NaN pass through
    exact = jnp.array([1.0, -2.5, 0.0078125, jnp.inf, -jnp.inf], F32)
    got = stochastic_round(exact, jax.random.PRNGKey(3)).astype(F32)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(exact))
    assert np.isnan(float(stochastic_round(jnp.array(jnp.nan), jax.random.PRNGKey(0))))


def test_small_update_is_lost_by_round_to_nearest_and_kept_on_average_by_sr():
    w = jnp.ones((8192,), BF16)
    u = jnp.full((8192,), 1e-3, F32)       # < half a bf16 ulp at 1.0 (2^-8 = 0.0039)
    rn = (w.astype(F32) + u).astype(BF16)
    assert bool(jnp.all(rn == w))           # round-to-nearest: the update is gone
    sr = np.asarray(stochastic_round(w.astype(F32) + u, jax.random.PRNGKey(7)).astype(F32))
    assert set(np.unique(sr)) == {1.0, 1.0 + 2.0 ** -7}
    np.testing.assert_allclose(sr.mean(), 1.001, atol=3e-4)   # E = 1 + 1e-3


def _linear_run(master, steps=20, apply=None):
    """AdamW (lr 1e-3, no warm-up) on `|X W - Y|^2` with |W| in [1, 2): each update is about
    1e-3, below half a bf16 ulp there (2^-8 = 0.0039). -> (losses, final state)."""
    rng = np.random.default_rng(0)
    W0 = (rng.uniform(1.0, 1.9, (16, 8)) * rng.choice([-1, 1], (16, 8))).astype(np.float32)
    X = jnp.asarray(rng.normal(size=(64, 16)), F32)
    Y = X @ jnp.asarray(W0 + 0.02 * np.sign(rng.normal(size=W0.shape)), F32)
    o = optim_config(1e-3, warmup_steps=0)
    o.master_dtype, o.stochastic_rounding = master, master == "bfloat16"
    opt = make_optimizer(o)
    if apply is not None:
        opt = opt._replace(apply=apply)
    state = new_state({"w": jnp.asarray(W0)}, opt, 0)
    hp = optim_hparams(o)
    loss_fn = lambda p: jnp.mean(jnp.square(X @ p["w"].astype(F32) - Y))

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, opt_state, _ = apply_update(opt, loss, grads, opt_state, params, hp)
        return params, opt_state, loss

    params, opt_state, losses = state.params, state.opt_state, []
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    return np.array(losses + [float(loss_fn(params))]), state, params, opt_state


def test_bf16_master_with_sr_trains_where_round_to_nearest_would_not_move_a_weight():
    losses, state0, params, opt_state = _linear_run("bfloat16")
    assert state0.params["w"].dtype == BF16 and params["w"].dtype == BF16
    adam = opt_state.inner_state[1][0]
    assert adam.mu["w"].dtype == F32 and adam.nu["w"].dtype == F32
    assert losses[-1] < 0.7 * losses[0], losses
    assert np.all(np.diff(losses[[0, 5, 10, 15, 20]]) < 0), losses
    # the same updates written back with round-to-nearest: no weight ever moves
    rn = lambda p, u, s: jax.tree_util.tree_map(
        lambda a, b: (a.astype(F32) + b).astype(a.dtype), p, u)
    rn_losses, _, rn_params, _ = _linear_run("bfloat16", apply=rn)
    np.testing.assert_array_equal(np.asarray(rn_params["w"]), np.asarray(state0.params["w"]))
    assert np.all(rn_losses == rn_losses[0])
    # float32 master weights: the reference; SR gets most of the way there
    f32_losses, s32, p32, _ = _linear_run("float32")
    assert s32.params["w"].dtype == F32 and p32["w"].dtype == F32
    assert losses[-1] < 0.5 * losses[0] + 0.5 * f32_losses[-1] + 1e-6
    # the rounding keys come from the optimizer's update count: a rerun is bitwise the same
    again = _linear_run("bfloat16")[2]
    np.testing.assert_array_equal(np.asarray(again["w"]), np.asarray(params["w"]))


def test_float32_master_is_the_plain_path():
    opt = make_optimizer(optim_config(1e-3))
    assert opt.spec.master_dtype == "float32"
    params = {"w": jnp.linspace(-1.0, 1.0, 7, dtype=F32)}
    assert opt.master(params)["w"] is params["w"]          # no cast, no copy
    # bfloat16 weights (a bf16-master SFT phase) become float32 masters again
    assert make_optimizer(optim_config(1e-3)).master(
        {"w": params["w"].astype(BF16)})["w"].dtype == F32
    updates = {"w": jnp.full((7,), 1e-9, F32)}
    np.testing.assert_array_equal(np.asarray(opt.apply(params, updates, opt.init(params))["w"]),
                                  np.asarray(optax.apply_updates(params, updates)["w"]))
    # a config saved before the fields existed reads as float32
    o = optim_config(1e-3)
    del o["master_dtype"], o["stochastic_rounding"]
    assert make_optimizer(o).spec.master_dtype == "float32"


def _nano_sft_cfg():
    cfg = grpo_arith.get_config("size=nano")
    cfg.sft.batch_size = 8
    cfg.sft.optim.lr, cfg.sft.optim.warmup_steps = 3e-3, 0
    cfg.sft.optim.master_dtype, cfg.sft.optim.stochastic_rounding = "bfloat16", True
    return validate(cfg)


def test_bf16_master_sft_through_build_sft():
    cfg = _nano_sft_cfg()
    model_cfg = get_model_config("nano")
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    step, state, hp, make_batch = build_sft(cfg, model_cfg, params, build_task(cfg))
    leaves = jax.tree_util.tree_leaves(state.params)
    assert all(x.dtype == BF16 for x in leaves)
    moments = [x for x in jax.tree_util.tree_leaves(state.opt_state)
               if hasattr(x, "shape") and x.ndim > 0]
    assert moments and all(x.dtype == F32 for x in moments)
    step = jax.jit(step)
    losses = []
    for i in range(20):
        state, m = step(state, make_batch(i), hp)
        losses.append(float(m["loss"]))
        assert float(m["nonfinite_updates"]) == 0.0
    assert all(x.dtype == BF16 for x in jax.tree_util.tree_leaves(state.params))
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses


@pytest.mark.parametrize("where", ["optim", "sft.optim"])
def test_bf16_master_without_stochastic_rounding_is_refused(where):
    cfg = grpo_arith.get_config("size=nano")
    o = cfg.optim if where == "optim" else cfg.sft.optim
    o.master_dtype = "bfloat16"
    with pytest.raises(UserError, match=rf"^config {where}\.master_dtype: 'bfloat16' needs "
                                        rf"{where}\.stochastic_rounding=True: .*half a bfloat16 "
                                        "ulp"):
        validate(cfg)
    o.stochastic_rounding = True
    validate(cfg)
    with pytest.raises(ValueError, match="stochastic_rounding=True"):
        o2 = optim_config(1e-3)
        o2.master_dtype = "bfloat16"
        make_optimizer(o2)     # the library call refuses too


def test_other_master_refusals_and_the_preference_config():
    from rlpt.preference.config import preference_config, validate as validate_pref
    cfg = grpo_arith.get_config("size=nano")
    cfg.optim.master_dtype = "float16"
    with pytest.raises(UserError, match=r"^config optim\.master_dtype: 'float16'"):
        validate(cfg)
    cfg = grpo_arith.get_config("size=nano")
    cfg.optim.stochastic_rounding = True
    with pytest.raises(UserError, match=r"^config optim\.stochastic_rounding: True has no "
                                        "effect"):
        validate(cfg)
    for mode, key in (("policy", "optim"), ("reward_model", "rm.optim")):
        pc = preference_config(mode)
        assert pc.optim.master_dtype == "float32" and pc.rm.optim.master_dtype == "float32"
        (pc.optim if key == "optim" else pc.rm.optim).master_dtype = "bfloat16"
        with pytest.raises(UserError, match=rf"^config {key}\.master_dtype: 'bfloat16' needs"):
            validate_pref(pc)

"""The algorithm registry and defaults: every policy-gradient algorithm of the registry is a
module rlpt.algorithms.<name> with its paper DEFAULTS (over rlpt.losses.policy's
SURROGATE_DEFAULTS) and its declared DYNAMIC fields; rlpt.config.default_algo builds its config;
rlpt.algorithms.base.split_algo_config splits it by declaration; each loss builds from its
default config and is finite under jit."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loss_refs import cfg, every_loss_batch, make_batch, to_jax
from rlpt import registry
from rlpt.algorithms.base import split_algo_config
from rlpt.config import base_config, default_algo
from rlpt.losses.policy import SURROGATE_DEFAULTS, SURROGATE_DYNAMIC

# the algorithms the paper-default and loss tests of tests/algorithms/ cover (a floor: the loops
# below run over the registry)
LOSS_NAMES = ["ppo", "grpo", "dr_grpo", "dapo", "gspo", "gspo_token", "gmpo", "gtpo", "grpo_s",
              "kimi_k15", "kdrl", "exp_grpo", "mgrpo", "uft", "relift", "one_shot_rlvr", "sft",
              "relift_sft"]


def pg_names():
    """Every registered policy-gradient algorithm (the registry also holds preference and
    reward-model algorithms, which have their own trainers and defaults)."""
    return [n for n in registry.names("algorithm")
            if registry.get("algorithm", n).kind == "policy_gradient"]


def module_of(name):
    return importlib.import_module(f"rlpt.algorithms.{name}")


def shared_defaults():
    """The fields every algorithm config has besides its own: the surrogate's and the feature
    pieces' defaults."""
    out = dict(SURROGATE_DEFAULTS)
    for n in registry.names("piece"):
        out.update(registry.get("piece", n).defaults)
    return out


def declared_dynamic(name):
    """The dynamic fields declared for algorithm `name`: the surrogate's, its own and those of
    every piece and shaping."""
    out = set(SURROGATE_DYNAMIC) | set(registry.get("algorithm", name).dynamic)
    for kind in ("piece", "shaping"):
        for n in registry.names(kind):
            out |= set(registry.get(kind, n).dynamic)
    return out


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def test_default_configs_hold_paper_defaults():
    assert set(LOSS_NAMES) <= set(pg_names())
    c = default_algo("grpo")
    assert (c.beta, c.group_size, c.loss_agg, c.eps_low, c.ddof, c.eps) == (
        0.04, 64, "seq_mean_token_mean", 0.2, 1, 1e-6)
    c = default_algo("dapo")
    assert (c.eps_low, c.eps_high, c.loss_agg, c.beta) == (0.2, 0.28, "token_mean", 0.0)
    assert (c.overlong_max, c.overlong_cache) == (20480, 4096)
    assert default_algo("dr_grpo").loss_agg == "seq_mean_token_sum_norm"
    c = default_algo("gspo")
    assert (c.eps_low, c.eps_high, c.log_ratio_clamp) == (3e-4, 4e-4, 10.0)
    assert default_algo("gmpo").eps_low == 0.4
    assert default_algo("ppo").dual_clip == 3.0
    c = default_algo("kdrl")
    assert (c.kd_beta_init, c.kd_beta_min, c.kd_beta_delta) == (5e-3, 1e-3, 5e-5)
    c = default_algo("uft")
    assert (c.sft_coef, c.hint_p_low, c.hint_p_high, c.hint_steps) == (1e-3, 0.05, 0.95, 300)
    c = default_algo("one_shot_rlvr")
    assert (c.beta, c.kl_estimator, c.entropy_coef, c.group_size, c.temperature) == (
        1e-3, "k3", 1e-3, 8, 0.6)
    assert default_algo("gtpo").alpha2 == 0.1
    with pytest.raises(KeyError):
        default_algo("nope")


def test_default_algo_is_the_modules_defaults_over_the_shared_ones():
    shared = shared_defaults()
    for name in pg_names():
        mod = module_of(name)
        algorithm = registry.get("algorithm", name)
        assert mod.ALGORITHM is algorithm and algorithm.name == name, name
        assert algorithm.defaults == mod.DEFAULTS, name
        c = default_algo(name)
        assert c.name == name
        assert set(c.keys()) == set(shared) | set(mod.DEFAULTS) | {"name", "shaping"}, name
        for k, v in c.items():
            want = mod.DEFAULTS.get(k, shared.get(k, () if k == "shaping" else name))
            assert v == (tuple(want) if isinstance(want, (list, tuple)) else want), (name, k)
    # a fresh ConfigDict each call: editing one leaves the defaults alone
    c = default_algo("grpo")
    c.beta = 1.0
    assert default_algo("grpo").beta == 0.04


def test_every_algorithm_declares_dynamic_fields_it_has():
    shared = shared_defaults()
    for name in pg_names():
        mod = module_of(name)
        dynamic = getattr(mod, "DYNAMIC", frozenset())
        assert registry.get("algorithm", name).dynamic == dynamic, name
        c = default_algo(name)
        for k in dynamic:
            assert k in mod.DEFAULTS or k in shared, (name, k)
            assert is_number(c[k]), (name, k, c[k])   # declared dynamic: a number by default
    assert SURROGATE_DYNAMIC <= set(SURROGATE_DEFAULTS)


def test_unknown_algorithm_lists_known_names():
    with pytest.raises(KeyError) as e:
        default_algo("no_such_algorithm")
    msg = str(e.value)
    assert "no_such_algorithm" in msg
    for name in pg_names():
        assert repr(name) in msg, name
    with pytest.raises(KeyError, match="known algorithm names"):
        registry.get("algorithm", "no_such_algorithm")


def test_split_algo_config_puts_exactly_the_declared_numbers_in_the_dynamic_half():
    for name in pg_names():
        algo = base_config(name).algo
        static, dyn = split_algo_config(algo)
        items = dict(algo.items())
        declared = declared_dynamic(name)
        want = {k for k, v in items.items() if k in declared and is_number(v)}
        assert set(dyn) == want, name
        assert set(static) == set(items) - want, name
        for k, v in dyn.items():
            assert v.dtype == jnp.float32 and v.shape == (), (name, k)
            np.testing.assert_allclose(float(v), items[k], rtol=1e-6, err_msg=f"{name}.{k}")
        assert static["name"] == name and static["group_size"] == -1   # ints not declared
    # an int declared dynamic is dynamic; a float not declared is static
    static, dyn = split_algo_config(base_config("kimi_k15").algo)
    assert "length_penalty_start" in dyn and float(dyn["length_penalty_start"]) == 0.0
    assert {"tau", "length_penalty_weight", "eps_low", "beta"} <= set(dyn)
    static, dyn = split_algo_config(base_config("one_shot_rlvr").algo)
    assert static["temperature"] == 0.6 and "temperature" not in dyn
    assert static["kl_estimator"] == "k3" and "beta" in dyn
    # a declared field holding None (the term absent) is static; holding a number, dynamic
    assert "dual_clip" in split_algo_config(base_config("ppo").algo)[1]
    static, dyn = split_algo_config(base_config("grpo").algo)
    assert static["dual_clip"] is None and "dual_clip" not in dyn


def test_config_errors():
    with pytest.raises(ValueError, match="token_mean"):
        registry.get("loss", "grpo")(to_jax(make_batch(18)), cfg(loss_agg="mean"))
    no_ref = {k: v for k, v in make_batch(18).items() if k != "ref_logp"}
    with pytest.raises(KeyError, match="ref_logp"):
        registry.get("loss", "grpo")(to_jax(no_ref), None)  # beta = 0.04 needs the reference
    loss, metrics = registry.get("loss", "grpo")(to_jax(no_ref), cfg(beta=0.0))
    assert np.isfinite(float(loss)) and "kl" not in metrics
    with pytest.raises(ValueError, match="kd_mask"):
        registry.get("loss", "kdrl")(to_jax(make_batch(18)), cfg(kd_mask="sometimes",
                                                                 group_size=2))


def test_every_loss_builds_default_config_and_is_finite():
    assert set(LOSS_NAMES) <= set(registry.names("loss"))
    jb = every_loss_batch()
    for name in pg_names():
        c = default_algo(name)
        c.group_size = 4
        fn = registry.get("algorithm", name).loss
        assert registry.get("loss", name) is fn, name
        loss, metrics = jax.jit(lambda batch: fn(batch, c))(jb)  # also checks it traces under jit
        assert np.isfinite(float(loss)), name
        assert float(metrics["loss"]) == float(loss), name
        if name not in ("sft", "relift_sft"):
            for key in ("clip_frac", "ratio_mean", "kl"):
                assert key in metrics and np.isfinite(float(metrics[key])), (name, key)
    _, m_kd = registry.get("loss", "kdrl")(jb, None)
    assert "kd_beta" in m_kd
    _, m_dapo = registry.get("loss", "dapo")(jb, cfg(group_size=4))
    assert "effective_groups" in m_dapo

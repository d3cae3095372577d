"""The shared clipped surrogate (rlpt/losses/policy.py) vs numpy and its clip gradients, and the
config overlay `resolve`. Each algorithm's loss is tested in tests/algorithms/test_<name>.py."""
import types

import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import make_batch, np_clip_tok
from rlpt.algorithms import dapo, grpo
from rlpt.losses import policy


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


def test_resolve_overlays_any_attribute_object_on_the_defaults():
    r = policy.resolve(types.SimpleNamespace(beta=0.5), "grpo", grpo.DEFAULTS)
    assert (r.beta, r.group_size) == (0.5, 64)
    assert policy.resolve({"eps_high": 0.3}, "dapo", dapo.DEFAULTS).eps_high == 0.3
    # no config: the shared defaults under the algorithm's; the name is set
    r = policy.resolve(None, "dapo", dapo.DEFAULTS)
    assert (r.name, r.eps_low, r.eps_high, r.kl_estimator) == ("dapo", 0.2, 0.28, "k3")
    assert policy.resolve(None, "x").__dict__ == dict(policy.SURROGATE_DEFAULTS, name="x")

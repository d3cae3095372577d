"""Sharding on 8 fake CPU devices. Run in its own process (tests/test_sharding.py does):
XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest tests/multidevice
"""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from rlpt import sharding  # noqa: E402
from rlpt.models import forward, get_model_config, init_params, token_logprobs  # noqa: E402
from rlpt.sampling import SamplingConfig, sample  # noqa: E402

CFG = get_model_config("tiny")  # d_model 128, 4 heads, 2 kv heads, d_ff 344, vocab 64
MESHES = [pytest.param({"data": 8}, marks=pytest.mark.slow), {"data": 2, "fsdp": 2, "tensor": 2},
          pytest.param({"data": 1, "fsdp": 4, "tensor": 2}, marks=pytest.mark.slow)]


def setup_module():
    assert jax.device_count() == 8, "XLA_FLAGS must be set before jax is imported"


def _data():
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, 64, size=(8, 12)).astype(np.int32)
    valid = np.ones((8, 12), bool)
    valid[::2, :3] = False  # some left padding
    tokens = np.where(valid, tokens, 0)
    return jnp.asarray(tokens), jnp.asarray(valid)


def _loss(params, tokens, valid):
    logits = forward(CFG, params, tokens, valid)
    lp = token_logprobs(logits[:, :-1], tokens[:, 1:])
    m = valid[:, 1:].astype(jnp.float32)
    return -(lp * m).sum() / m.sum()


@pytest.fixture(scope="module")
def params():
    return init_params(CFG, jax.random.PRNGKey(0))


@pytest.mark.parametrize("axes", MESHES, ids=lambda a: "x".join(f"{k}{v}" for k, v in a.items()))
def test_sharded_equals_single_device(axes, params):
    tokens, valid = _data()
    ref_logits = jax.jit(functools.partial(forward, CFG))(params, tokens, valid)
    ref_loss, ref_grad = jax.jit(jax.value_and_grad(_loss))(params, tokens, valid)
    scfg = SamplingConfig(max_new_tokens=8, num_samples=2, temperature=1.0, top_k=10)
    samp = jax.jit(functools.partial(sample, CFG, scfg=scfg))
    ref_sample = samp(params, tokens, valid, jax.random.PRNGKey(3))

    mesh = sharding.make_mesh(axes)
    p_sh = sharding.param_shardings(params, mesh)
    b_sh = sharding.batch_sharding(mesh, 2, 8)
    sp = jax.device_put(params, p_sh)
    st, sv = jax.device_put(tokens, b_sh), jax.device_put(valid, b_sh)

    # parameters really are sharded as the rules say
    q = sp["layer_0"]["attn"]["q"]["kernel"]
    want_q = P("fsdp" if mesh.shape.get("fsdp", 1) > 1 else None,
               "tensor" if mesh.shape.get("tensor", 1) > 1 else None)
    assert q.sharding.spec == want_q
    if mesh.shape.get("tensor", 1) > 1:
        shard_shapes = {s.data.shape for s in q.addressable_shards}
        assert shard_shapes == {(128 // mesh.shape.get("fsdp", 1), 128 // 2)}
        down = sp["layer_1"]["mlp"]["down"]["kernel"]
        assert down.sharding.spec[0] == "tensor"
    assert sp["final_norm"]["scale"].sharding.is_fully_replicated

    logits = jax.jit(functools.partial(forward, CFG), in_shardings=(p_sh, b_sh, b_sh),
                     out_shardings=sharding.batch_sharding(mesh, 3, 8))(sp, st, sv)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(ref_logits), atol=2e-5)
    loss, grad = jax.jit(jax.value_and_grad(_loss), in_shardings=(p_sh, b_sh, b_sh),
                         out_shardings=(sharding.replicated(mesh), p_sh))(sp, st, sv)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(ref_grad)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)
    assert grad["layer_0"]["attn"]["q"]["kernel"].sharding.spec == want_q

    out = jax.jit(functools.partial(sample, CFG, scfg=scfg),
                  in_shardings=(p_sh, b_sh, b_sh, sharding.replicated(mesh)))(
        sp, st, sv, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(np.asarray(out.tokens), np.asarray(ref_sample.tokens))
    np.testing.assert_allclose(np.asarray(out.logprobs), np.asarray(ref_sample.logprobs),
                               atol=1e-4)


def test_cache_sharding_spec():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    from rlpt.models import init_cache
    cache = init_cache(CFG, 8, 16)
    sh = sharding.cache_sharding(mesh, cache)
    assert all(x.spec == P(("data", "fsdp"), "tensor", None, None) for x in sh["k"])


def test_mesh_errors():
    with pytest.raises(ValueError, match="needs 16 devices but 8 are available"):
        sharding.make_mesh({"data": 4, "tensor": 4})
    with pytest.raises(ValueError, match="does not divide the 8"):
        sharding.make_mesh({"data": -1, "tensor": 3})
    mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 8})
    # d_ff = 300 is not divisible by tensor = 8
    with pytest.raises(ValueError, match=r"param .*: dimension .* not divisible"):
        sharding.param_shardings(init_params(get_model_config("tiny", d_ff=300),
                                             jax.random.PRNGKey(0)), mesh)
    with pytest.raises(ValueError, match="batch.*not divisible"):
        sharding.batch_sharding(sharding.make_mesh({"data": 8}), 2, 12)

"""A LoRA RL step on 8 fake CPU devices (data 2 x fsdp 2 x tensor 2) equals the single-device
step: the adapters are placed by the sharding rules (lora_a [in, r]: `in` as the kernel's first
axis; lora_b [r, out]: `out` as its second; r unsharded), the frozen base like the model (run
in its own process, see tests/test_sharding.py)."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from configs import grpo_arith  # noqa: E402
from rlpt import sharding  # noqa: E402
from rlpt.build import build_model, build_rl, build_task  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.step import make_fused_step  # noqa: E402


def _run(mesh_axes):
    cfg = grpo_arith.get_config("size=nano")
    cfg.rl.batch_size, cfg.sampling.num_samples, cfg.algo.beta = 8, 4, 0.1
    cfg.optim.lr, cfg.lora.rank = 1e-2, 4
    cfg = validate(cfg)
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    toy = lambda frozen, tokens, mask, target, target_len: (
        ((tokens % 2 == 1) * mask).sum(1) / jax.numpy.maximum(mask.sum(1), 1), {})
    mesh = None if mesh_axes is None else sharding.make_mesh(mesh_axes)
    spec, state, hp, _ = build_rl(cfg, mcfg, params, task, mesh=mesh, reward=toy)
    if mesh is None:
        step, put = make_fused_step(spec, donate=False), (lambda b: b)
    else:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state)
        step = make_fused_step(spec, st_sh, donate=False)
        put = lambda b: sharding.shard_batch(b, mesh)
    metrics = []
    for s in range(2):
        state, m = step(state, put(task.make_batch(0, s, 8)), hp)
        metrics.append(jax.device_get(m))
    return state, metrics


def test_lora_rl_step_sharded_equals_single_device():
    ref_state, ref_m = _run(None)
    state, m = _run({"data": 2, "fsdp": 2, "tensor": 2})
    q = state.params["layer_0"]["attn"]["q"]
    assert q["lora_a"].sharding.spec == P("fsdp", None)
    assert q["lora_b"].sharding.spec == P(None, "tensor")
    assert state.params["layer_0"]["mlp"]["down"]["lora_a"].sharding.spec == P("tensor", None)
    assert state.frozen["base"]["layer_0"]["attn"]["q"]["kernel"].sharding.spec == \
        P("fsdp", "tensor")
    assert np.abs(np.asarray(ref_state.params["layer_0"]["attn"]["q"]["lora_b"])).max() > 0
    for a, b in zip(jax.tree_util.tree_leaves(state.params),
                    jax.tree_util.tree_leaves(ref_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    for k in ("reward_mean", "kl", "loss", "response_len"):
        np.testing.assert_allclose(m[-1][k], ref_m[-1][k], rtol=1e-4, atol=1e-6)

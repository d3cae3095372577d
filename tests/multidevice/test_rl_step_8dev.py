"""The fused RL step on 8 fake CPU devices equals the single-device step, full fine-tuning and LoRA
(run in its own process, see tests/test_sharding.py)."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from configs import grpo_arith  # noqa: E402
from rlpt import sharding  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.step import make_fused_step  # noqa: E402
from rlpt.build import build_model, build_rl, build_task  # noqa: E402


def _run(mesh_axes, size="tiny", **overrides):
    """Two fused steps of grpo_arith (`size`, 8 prompts x G=4, `overrides` of the config) on
    one device (mesh_axes None) or the mesh; -> (state, metrics of each step)."""
    cfg = grpo_arith.get_config(f"size={size}")
    cfg.rl.batch_size, cfg.sampling.num_samples = 8, 4
    cfg.update_from_flattened_dict(overrides)
    cfg = validate(cfg)
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    toy = lambda frozen, tokens, mask, target, target_len: (
        ((tokens % 2 == 1) * mask).sum(1) / jax.numpy.maximum(mask.sum(1), 1), {})
    mesh = None if mesh_axes is None else sharding.make_mesh(mesh_axes)
    # with a mesh, build_rl places the state (rlpt.loop.place_state: params and the frozen
    # reference with the parameter rules, the optimizer state from the placed params)
    spec, state, hp, _ = build_rl(cfg, mcfg, params, task, mesh=mesh, reward=toy)
    if mesh is None:
        step = make_fused_step(spec, donate=False)
        put = lambda b: b
    else:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state)
        step = make_fused_step(spec, st_sh, donate=False)
        put = lambda b: sharding.shard_batch(b, mesh)
    metrics = []
    for s in range(2):
        state, m = step(state, put(task.make_batch(0, s, 8)), hp)
        metrics.append(jax.device_get(m))
    return state, metrics


@pytest.mark.parametrize("axes", [pytest.param({"data": 8}, marks=pytest.mark.slow),
                                  {"data": 2, "fsdp": 2, "tensor": 2}],
                         ids=["data8", "data2_fsdp2_tensor2"])
def test_fused_rl_step_sharded_equals_single_device(axes):
    ref_state, ref_m = _run(None)
    state, m = _run(axes)
    q = state.params["layer_0"]["attn"]["q"]["kernel"]
    assert len(q.sharding.device_set) == 8
    if axes.get("tensor", 1) > 1:
        assert q.sharding.spec == P("fsdp", "tensor")
    for a, b in zip(jax.tree_util.tree_leaves(state.params),
                    jax.tree_util.tree_leaves(ref_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    for k in ("reward_mean", "kl", "loss", "response_len"):
        np.testing.assert_allclose(m[-1][k], ref_m[-1][k], rtol=1e-4, atol=1e-6)
    assert ref_m[-1]["reward_std"] > 0  # a real update happened


@pytest.mark.slow   # ~15 s: tests/test_sharding.py::test_multidevice_slow_suite
def test_lora_rl_step_sharded_equals_single_device():
    """The adapters are placed by the sharding rules (lora_a [in, r]: `in` as the kernel's first
    axis; lora_b [r, out]: `out` as its second; r unsharded), the frozen base like the model."""
    lora = {"algo.beta": 0.1, "optim.lr": 1e-2, "lora.rank": 4}
    ref_state, ref_m = _run(None, "nano", **lora)
    state, m = _run({"data": 2, "fsdp": 2, "tensor": 2}, "nano", **lora)
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


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_host_reward_runs_per_batch_shard_and_equals_the_device_reward():
    """With a mesh, the host reward is called once per device shard (so in a multi-process run
    each process scores its own rows) and gives the same rewards as the JAX reward."""
    from rlpt.rewards.host_callback import host_reward_callback
    from rlpt.tasks.synthetic import AdditionTask
    task = AdditionTask(1, 2)
    mesh = sharding.make_mesh({"data": 8})
    seen = []

    def odd_share(tokens, mask, target, target_len):
        seen.append(tokens.shape[0])
        return (((tokens % 2 == 1) * mask).sum(1) / np.maximum(mask.sum(1), 1)).astype(np.float32)

    host = host_reward_callback(odd_share, mesh=mesh)
    batch = task.make_batch(0, 0, 32)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (32, 5), 0, 64)
    mask = (jax.random.uniform(jax.random.PRNGKey(2), (32, 5)) > 0.3).astype(np.float32)
    args = sharding.shard_batch({"tokens": np.asarray(tokens), "mask": np.asarray(mask),
                                 "target": batch["target"], "target_len": batch["target_len"]},
                                mesh)
    r, aux = jax.jit(host)(args["tokens"], args["mask"], args["target"], args["target_len"])
    np.testing.assert_allclose(np.asarray(r), odd_share(np.asarray(tokens), np.asarray(mask),
                                                        None, None), rtol=0, atol=0)
    assert sorted(set(seen[:-1])) == [4] and len(seen) == 9   # 8 shards of 4 rows, + the check
    assert int(aux["errors"]) == 0

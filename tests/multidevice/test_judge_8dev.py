"""The judge reward on 8 fake CPU devices: its params, a frozen model of the train state
(`state.frozen["judge"]`) placed by `rlpt.loop.place_state` with the parameter rules, passed to
the compiled step as sharded arguments, and the same scores as on one device (run in its own
process, see tests/test_sharding.py)."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from configs import grpo_arith  # noqa: E402
from rlpt import sharding  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.rewards.judge import judge_config  # noqa: E402
from rlpt.rewards.prompt_target import prompt_as_target  # noqa: E402
from rlpt.step import make_fused_step  # noqa: E402
from rlpt.tasks.synthetic import AdditionTask  # noqa: E402
from rlpt.build import build_rl, build_task  # noqa: E402

TINY = get_model_config("tiny")
TASK = AdditionTask(1, 2)


def _build(mesh):
    """The RL phase with a tiny judge (preset, seed 1) as the reward, placed on `mesh`."""
    cfg = grpo_arith.get_config("size=tiny")
    cfg.task.kwargs = dict(min_digits=1, max_digits=2)
    cfg.rl.batch_size, cfg.sampling.num_samples = 8, 4
    cfg.reward.kind = "judge"
    cfg.reward.judge = judge_config(preset="tiny", seed=1)
    cfg = validate(cfg)
    return build_rl(cfg, TINY, init_params(TINY, jax.random.PRNGKey(0)), build_task(cfg),
                    mesh=mesh)


def _scores(spec):
    """The step's reward on hand-built completions, the frozen models an argument."""
    return jax.jit(lambda frozen, b: spec.reward(frozen, b["tokens"], b["mask"], b["target"],
                                                 b["target_len"]))


@pytest.mark.slow   # ~30 s: tests/test_sharding.py::test_multidevice_slow_suite
def test_judge_params_sharded_and_scores_equal_single_device():
    params = init_params(TINY, jax.random.PRNGKey(1))  # what the preset judge (seed 1) is
    b = prompt_as_target(TASK.make_batch(0, 0, 8))
    rng = np.random.default_rng(0)
    batch = dict(b, tokens=rng.integers(4, 14, size=(8, 5)).astype(np.int32),
                 mask=(np.arange(5)[None] < rng.integers(1, 6, size=(8, 1))).astype(np.int32))
    spec0, state0, hp0, _ = _build(None)
    for a, w in zip(jax.tree_util.tree_leaves(state0.frozen["judge"]),
                    jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(w))
    ref_r, ref_aux = jax.device_get(_scores(spec0)(state0.frozen, batch))
    _, ref_m = make_fused_step(spec0, donate=False)(state0, b, hp0)

    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    spec, state, hp, _ = _build(mesh)
    judge = state.frozen["judge"]
    want = sharding.param_shardings(params, mesh)
    for got, w in zip(jax.tree_util.tree_leaves(judge), jax.tree_util.tree_leaves(want)):
        assert got.sharding == w
    q = judge["layer_0"]["attn"]["q"]["kernel"]
    assert q.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state)
    step = make_fused_step(spec, st_sh, donate=False)
    # the compiled step takes the judge params as arguments with their own shardings
    compiled = step.lower(state, b, hp).compile()
    arg_sh = jax.tree_util.tree_leaves(compiled.input_shardings[0][0].frozen["judge"])
    assert len(arg_sh) == len(jax.tree_util.tree_leaves(want))
    for got, w in zip(arg_sh, jax.tree_util.tree_leaves(want)):
        assert got.is_equivalent_to(w, 2), (got, w)
    r, aux = _scores(spec)(state.frozen, sharding.shard_batch(batch, mesh))
    np.testing.assert_allclose(np.asarray(r), ref_r, atol=2e-5)
    assert np.all(np.asarray(aux["judge_verdict_mass"]) > 0)
    np.testing.assert_allclose(np.asarray(aux["judge_verdict_mass"]),
                               ref_aux["judge_verdict_mass"], rtol=1e-4)
    new, m = step(state, sharding.shard_batch(b, mesh), hp)
    assert int(new.step) == 1 and float(m["reward_judge_verdict_mass"]) > 0
    np.testing.assert_allclose(float(m["reward_mean"]), float(ref_m["reward_mean"]), rtol=1e-4)

"""The judge reward on 8 fake CPU devices: its params placed with their own shardings, passed
to the compiled program as sharded arguments, and the same scores as on one device (run in its
own process, see tests/test_sharding.py)."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from rlpt import sharding  # noqa: E402
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.reward_model import prompt_as_target  # noqa: E402
from rlpt.rewards.judge import JudgeReward, judge_config, judge_ids, make_judged_step  # noqa: E402
from rlpt.tasks.synthetic import AdditionTask  # noqa: E402

TINY = get_model_config("tiny")
TASK = AdditionTask(1, 2)


class RewardOnly:
    """The part of RLStep that make_judged_step drives: `fused` calls `reward_fn`."""
    reward_fn = None

    def fused(self, state, batch):
        r, aux = self.reward_fn(batch["tokens"], batch["mask"], batch["target"],
                                batch["target_len"])
        return state + 1, {"r": r, "mass": aux["judge_verdict_mass"]}


def test_judge_params_sharded_and_scores_equal_single_device():
    params = init_params(TINY, jax.random.PRNGKey(1))
    ids = judge_ids(judge_config(), TASK.tokenizer)
    b = prompt_as_target(TASK.make_batch(0, 0, 8))
    rng = np.random.default_rng(0)
    batch = dict(b, tokens=rng.integers(4, 14, size=(8, 5)).astype(np.int32),
                 mask=(np.arange(5)[None] < rng.integers(1, 6, size=(8, 1))).astype(np.int32))
    ref = jax.device_get(make_judged_step(RewardOnly(), JudgeReward(TINY, params, ids),
                                          donate=False)(0, batch)[1])
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    judge = JudgeReward(TINY, params, ids, mesh=mesh)
    want = sharding.param_shardings(params, mesh)
    for got, w in zip(jax.tree_util.tree_leaves(judge.params), jax.tree_util.tree_leaves(want)):
        assert got.sharding == w
    q = judge.params["layer_0"]["attn"]["q"]["kernel"]
    assert q.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    step = make_judged_step(RewardOnly(), judge, donate=False)
    state, m = step(0, sharding.shard_batch(batch, mesh))
    compiled = step.jitted.lower(0, batch, judge.params).compile()
    arg_sh = jax.tree_util.tree_leaves(compiled.input_shardings[0][2])
    for got, w in zip(arg_sh, jax.tree_util.tree_leaves(want)):
        assert got.is_equivalent_to(w, 2), (got, w)
    np.testing.assert_allclose(np.asarray(m["r"]), ref["r"], atol=2e-5)
    assert int(state) == 1 and np.all(np.asarray(m["mass"]) > 0)

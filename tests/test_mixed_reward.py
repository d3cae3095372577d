"""The mixed verifiable + preference reward (rlpt.rewards.mixed, `reward.rm_component`): the
reward model scores one component's rows, the task's rule every other row; refusals naming the
field."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rlpt import registry
from rlpt.config import validate
from rlpt.errors import UserError
from rlpt.rewards.mixed import routed_reward, with_route
from rlpt.rewards.prompt_target import prompt_with_target

ADD = dict(name="addition", kwargs=dict(min_digits=1, max_digits=2))
MUL = dict(name="multiplication", kwargs=dict(min_digits_a=1, max_digits_a=2, min_digits_b=1,
                                              max_digits_b=1))


def _fake_rm_and_task_reward(frozen, tokens, mask, target, target_len):
    """Stands for reward_model_and_task_reward: the 'RM score' is 10 + the row's first completion
    token, the true reward 1 on even rows; it must never see the route column."""
    assert target.shape[1] == frozen["width"]
    true = (jnp.arange(tokens.shape[0]) % 2 == 0).astype(jnp.float32)
    return 10.0 + tokens[:, 0].astype(jnp.float32), {"rm_score": tokens[:, 0], "true_reward": true,
                                                    "correct": true}


def test_routed_rows_get_the_reward_model_score_and_the_others_the_rule():
    task = registry.get("task", "transfer")(components=[ADD, MUL], train=-1)
    batch = with_route(prompt_with_target(task.make_batch(0, 0, 6)), component=1)
    packed = prompt_with_target(task.make_batch(0, 0, 6))["target"]
    np.testing.assert_array_equal(batch["target"][:, :-1], packed)
    assert batch["target"][:, -1].tolist() == [0, 0, 0, 1, 1, 1]   # rows 3-5: multiplication
    tokens = jnp.arange(6)[:, None] * jnp.ones((6, 4), jnp.int32)
    r, aux = routed_reward(_fake_rm_and_task_reward)({"width": packed.shape[1]}, tokens,
                                                     jnp.ones((6, 4)), batch["target"],
                                                     batch["target_len"])
    np.testing.assert_allclose(np.asarray(r), [1, 0, 1, 13, 14, 15])
    np.testing.assert_allclose(np.asarray(aux["rm_row"]), [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(np.asarray(aux["true_reward"]), [1, 0, 1, 0, 1, 0])


def test_a_batch_without_component_labels_is_refused():
    from rlpt.tasks.synthetic import AdditionTask
    b = prompt_with_target(AdditionTask().make_batch(0, 0, 4))
    with pytest.raises(UserError, match="config reward.rm_component"):
        with_route(b, 1)


def test_the_reward_model_pairs_of_a_transfer_task_corrupt_with_its_components_alphabet():
    from rlpt.tasks.synthetic_pairs import SyntheticPairs, alphabet_of
    task = registry.get("task", "transfer")(components=[ADD, MUL], train=1)
    assert alphabet_of(task) == "0123456789"
    pairs = SyntheticPairs(task).make_batch(0, 0, 8)
    prompts = task.decode_prompt(pairs["prompt"])
    assert all("*" in p for p in prompts)   # the trained component's pairs
    cd = registry.get("task", "transfer")(
        components=[dict(name="countdown", kwargs={}), dict(name="countdown", kwargs={})], train=-1)
    assert alphabet_of(cd) == "0123456789+-*"


@pytest.mark.parametrize("change,needle", [
    (dict(rm_component="1"), "'1'; expected a component index"),
    (dict(rm_component=-2), "-2; expected a component index"),
    (dict(kind="device"), "1 needs reward.kind='reward_model'"),
    (dict(task="addition"), "1 needs the transfer task"),
])
def test_bad_rm_component_configs_are_refused(change, needle):
    from configs import mixed_reward
    c = mixed_reward.get_config("quick=1")
    if "task" in change:
        c.task.name, c.task.kwargs = change["task"], dict(min_digits=1, max_digits=2)
    if "kind" in change:
        c.reward.kind = change["kind"]
    if "rm_component" in change:   # a fresh dict: a JSON config may hold any type
        c.reward = ml_collections.ConfigDict({**c.reward.to_dict(), **change})
    with pytest.raises(UserError, match=f"config reward.rm_component: {needle}"):
        validate(c)


def test_a_component_the_task_does_not_have_is_refused_when_built(tmp_path):
    from configs import mixed_reward
    from rlpt.build import build_model, build_rl, build_task
    c = mixed_reward.get_config(f"quick=1,rm={tmp_path / 'none'}")   # refused before it is read
    c.reward.rm_component = 2
    c = validate(c)
    model_cfg, params = build_model(c)
    with pytest.raises(UserError, match="config reward.rm_component: 2 is not a component of "
                                        r"the task \(it has 2\)"):
        build_rl(c, model_cfg, params, build_task(c))

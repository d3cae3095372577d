"""The `transfer` task (rlpt.tasks.transfer): RL on one component, the warm-up on all, the
evaluation per component; batches padded to common widths; refusals."""
import numpy as np
import pytest

from rlpt import registry
from rlpt.tasks.synthetic import AdditionTask, MultiplicationTask

ADD = dict(name="addition", kwargs=dict(min_digits=1, max_digits=3))
MUL = dict(name="multiplication", kwargs=dict(min_digits_a=1, max_digits_a=2, min_digits_b=1,
                                              max_digits_b=1))


def _task(train=0, components=(ADD, MUL)):
    return registry.get("task", "transfer")(components=list(components), train=train)


def test_rl_trains_on_one_component_padded_to_the_common_widths():
    t = _task(train=1)
    mul = MultiplicationTask(**MUL["kwargs"])
    b, own = t.make_batch(3, 7, 8), mul.make_batch(3, 7, 8)
    assert b["prompt"].shape[1] == t.prompt_len == AdditionTask(**ADD["kwargs"]).prompt_len
    assert t.decode_prompt(b["prompt"]) == mul.decode_prompt(own["prompt"])
    np.testing.assert_array_equal(b["target"][:, :own["target"].shape[1]], own["target"])
    np.testing.assert_array_equal(b["target_len"], own["target_len"])
    np.testing.assert_array_equal(b["prompt"][:, -own["prompt"].shape[1]:], own["prompt"])
    r, _ = t.reward(b["solution"], b["solution_mask"], b["target"], b["target_len"])
    assert np.all(np.asarray(r) == 1.0)   # the padded gold solutions still score 1


def test_rl_batches_carry_their_component_and_train_minus_one_mixes_them():
    """train=k: every row labelled k; train=-1: the components in equal shares, each row
    labelled by its component (what a mixed reward routes by: rlpt.rewards.mixed)."""
    assert _task(train=1).make_batch(0, 0, 6)["difficulty"].tolist() == [1] * 6
    t = _task(train=-1)
    b = t.make_batch(0, 2, 7)
    assert b["difficulty"].tolist() == [0] * 4 + [1] * 3
    assert all(("+" in p) == (d == 0) for p, d in zip(t.decode_prompt(b["prompt"]),
                                                       b["difficulty"]))
    r, _ = t.reward(b["solution"], b["solution_mask"], b["target"], b["target_len"])
    assert np.all(np.asarray(r) == 1.0)


def test_the_warm_up_mixes_and_the_evaluation_labels_every_component():
    t = _task(train=0)
    sft = t.sft_batch(0, 0, 9)
    ops = ["*" if "*" in p else "+" for p in t.decode_prompt(sft["prompt"])]
    assert ops.count("+") == 5 and ops.count("*") == 4 and "difficulty" not in sft
    ev = t.eval_set(10)
    assert ev["difficulty"].tolist() == [0] * 5 + [1] * 5
    assert all(("+" in p) == (d == 0) for p, d in zip(t.decode_prompt(ev["prompt"]),
                                                       ev["difficulty"]))
    r, _ = t.reward(ev["solution"], ev["solution_mask"], ev["target"], ev["target_len"])
    assert np.all(np.asarray(r) == 1.0)
    assert t.component_labels() == ["addition", "multiplication"]


def test_arms_training_different_components_share_the_sft_key():
    from configs import grpo_arith
    from rlpt.sweep.sft_cache import sft_key
    keys = []
    for train in (0, 1):
        c = grpo_arith.get_config("size=nano")
        c.task.name, c.task.kwargs = "transfer", dict(components=[ADD, MUL], train=train)
        keys.append(sft_key(c))
    assert keys[0] == keys[1]


@pytest.mark.parametrize("kwargs,needle", [
    (dict(components=[ADD]), "at least two"),
    (dict(components=[ADD, MUL], train=2), "train=2"),
    (dict(components=[ADD, MUL], train=-2), "train=-2"),
    (dict(components=[ADD, dict(name="countdown", kwargs={})]), "different reward"),
])
def test_bad_transfer_configs_are_refused(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        registry.get("task", "transfer")(**kwargs)

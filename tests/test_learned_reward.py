"""A trained reward model as the RL reward from a config (`reward.kind="reward_model"`,
rlpt.build.learned_reward_model): refusals naming the field, and a run that optimises the RM's
score while logging the task's own reward beside it."""
import json

import pytest

from rlpt.config import validate
from rlpt.errors import UserError


def test_a_reward_model_reward_needs_its_workdir(tmp_path):
    from configs import rm_overoptimization
    from rlpt.build import build_model, build_rl, build_task
    c = rm_overoptimization.get_config("quick=1")
    c.reward.rm_workdir = ""
    with pytest.raises(UserError, match="config reward.rm_workdir: reward.kind='reward_model'"):
        validate(c)
    c.reward.rm_workdir = str(tmp_path / "none")
    c = validate(c)
    model_cfg, params = build_model(c)
    with pytest.raises(UserError, match=r"config reward.rm_workdir: .*config.json does not exist"):
        build_rl(c, model_cfg, params, build_task(c))


@pytest.mark.slow   # two short trainings (~40 s): the default suite's time (README, Tests)
def test_grpo_against_a_trained_reward_model_logs_the_proxy_and_the_truth(tmp_path):
    """A 3-step BT reward model, then 6 GRPO steps against it: the optimised reward is the RM's
    score (reward_mean = reward_rm_score), the logged accuracy is the task's own (= the mean of
    the true reward's `correct`), and the held-out evaluation scores the true task."""
    from configs import rm_arith, rm_overoptimization
    from rlpt.train import run
    rm = rm_arith.get_config("kind=bt,quick=1")
    run(rm, str(tmp_path / "rm"))
    c = rm_overoptimization.get_config(f"quick=1,rm={tmp_path / 'rm'}")
    summary = run(c, str(tmp_path / "policy"))
    rows = [json.loads(x) for x in open(tmp_path / "policy" / "metrics.jsonl")]
    rl = [r for r in rows if r["phase"] == "rl"]
    assert len(rl) == c.rl.steps
    for r in rl:
        assert r["reward_mean"] == pytest.approx(r["reward_rm_score"], abs=1e-6)
        assert r["accuracy"] == pytest.approx(r["reward_correct"], abs=1e-6)
        assert 0.0 <= r["reward_true_reward"] <= 1.0
    assert any(abs(r["reward_rm_score"] - r["reward_true_reward"]) > 1e-3 for r in rl)
    assert {"greedy_acc", "pass@1"} <= set(summary["after_rl"])


def test_prompt_and_target_travel_together_and_split_back():
    """prompt_with_target packs [prompt | gold target] into `target`; split_prompt_target gives
    back the left-padded prompt, its mask (the non-pad tokens) and the gold target exactly."""
    import numpy as np
    from rlpt.rewards.prompt_target import prompt_with_target, split_prompt_target
    from rlpt.tasks.synthetic import AdditionTask
    task = AdditionTask(min_digits=1, max_digits=2)
    b = task.make_batch(0, 0, 64)
    packed = prompt_with_target(b)
    assert packed["target"].shape == (64, b["prompt"].shape[1] + b["target"].shape[1])
    prompt, mask, gold = split_prompt_target(packed["target"], task.prompt_len,
                                             task.tokenizer.pad_id)
    np.testing.assert_array_equal(prompt, b["prompt"])
    np.testing.assert_array_equal(mask, b["prompt_mask"])
    np.testing.assert_array_equal(gold, b["target"])
    assert packed["target_len"] is b["target_len"]

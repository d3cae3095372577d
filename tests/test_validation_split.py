"""The validation split (rlpt.evaluation.validation): prompts for choosing hyperparameters, none
of them a held-out prompt, evaluated beside the held-out ones by a single run and by a sweep."""
import json

import numpy as np
import pytest
from tqdm import tqdm

from sweep_helpers import small_config
from rlpt.config import validate
from rlpt.errors import UserError
from rlpt.evaluation.validation import validation_set, validation_summary
from rlpt.sweep.points import group_points, points_to_configs
from rlpt.sweep.run import run_group
from rlpt.tasks.scratchpad import ScratchpadAdditionTask
from rlpt.tasks.synthetic import AdditionTask
from rlpt.train import run


def _prompts(batch):
    return [row.tobytes() for row in np.asarray(batch["prompt"])]


@pytest.mark.parametrize("task,n", [(AdditionTask(min_digits=1, max_digits=1), 16),
                                    (ScratchpadAdditionTask(min_digits=1, max_digits=3), 64)])
def test_validation_prompts_are_never_held_out_prompts(task, n):
    """n rows of every key, no prompt shared with the held-out set, the same rows on every call.
    On 1-digit sums (100 problems) the first n rows of the unfiltered draw repeat held-out
    prompts, so the filter has work to do."""
    held = task.eval_set(128)
    val = validation_set(task, n, held)
    assert {k: v.shape[0] for k, v in val.items()} == {k: n for k in held}
    assert not set(_prompts(val)) & set(_prompts(held))
    again = validation_set(task, n, held)
    assert all(np.array_equal(val[k], again[k]) for k in val)
    if type(task) is AdditionTask:   # the 1-digit case
        raw = task.eval_set(4 * n, seed=10_001)
        assert set(_prompts(raw)[:n]) & set(_prompts(held))


def test_validation_refusals_name_the_field():
    class Fixed:
        def eval_set(self, n):   # a fixed test split (as gsm8k): nothing to draw from
            raise AssertionError("not called")
    with pytest.raises(ValueError, match=r"eval.validation_prompts=8: task Fixed has no seeded"):
        validation_set(Fixed(), 8, {"prompt": np.zeros((1, 3), np.int32)})
    tiny = AdditionTask(min_digits=1, max_digits=1)   # 100 problems: 256 held-out draws cover most
    with pytest.raises(ValueError, match=r"eval.validation_prompts=200: only \d+ of 800"):
        validation_set(tiny, 200, tiny.eval_set(256))
    c = small_config()
    c.eval.validation_prompts = -1
    with pytest.raises(UserError, match="config eval.validation_prompts"):
        validate(c)


def _rows(path, phase):
    return [json.loads(line) for line in open(path) if json.loads(line)["phase"] == phase]


def test_a_sweep_and_a_single_run_evaluate_the_same_validation_prompts(tmp_path):
    """With eval.validation_prompts = 16, every evaluation step has a validation row next to its
    eval row, in a sweep point and in `rlpt.train.run` of the same config, with the same values
    (the same prompts and sampling), and the summaries carry validation_after_rl; the
    validation rows differ from the held-out rows (other prompts)."""
    base = small_config(sft_steps=2, rl_steps=4)
    base.eval.validation_prompts = 16
    [group] = group_points(points_to_configs(base, [{"config.seed": 0}, {"config.seed": 1}]))
    run_group(group, str(tmp_path / "sweep"), tqdm(disable=True))
    p = group.points[0]
    alone = run(p.cfg, str(tmp_path / "alone"))
    point = tmp_path / "sweep" / "points" / p.name
    for d in (point, tmp_path / "alone"):
        val, ev = _rows(d / "metrics.jsonl", "validation"), _rows(d / "metrics.jsonl", "eval")
        assert [r["step"] for r in val] == [r["step"] for r in ev] == [0, 2, 4]
        assert any(v["pass@4"] != e["pass@4"] or v["greedy_acc"] != e["greedy_acc"]
                   for v, e in zip(val, ev))
        summary = json.loads((d / "summary.json").read_text())
        assert summary["validation_after_rl"] == val[-1]
        assert summary["validation_after_sft"] == val[0]
    got = _rows(point / "metrics.jsonl", "validation")
    want = _rows(tmp_path / "alone" / "metrics.jsonl", "validation")
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        np.testing.assert_allclose([g[k] for k in g if k != "phase"],
                                   [w[k] for k in g if k != "phase"], rtol=1e-5, atol=1e-7)
    assert alone["validation_after_rl"] == want[-1]


def test_validation_summary_without_rows_is_empty():
    assert validation_summary([{"phase": "eval", "step": 0}]) == {}

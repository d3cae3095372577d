"""The tool task's mix of difficulties (`easy_fraction`): difficulty labels, the evaluation per
label, and the SFT cache key that ignores the reward weights; and its two-call variant
(`addend_digits`) (rlpt.tasks.tool_task)."""
import numpy as np
import pytest

from configs import tool_calc
from rlpt.config import validate
from rlpt.envs.tool_rollout import evaluate_tool
from rlpt.models import get_model_config
from rlpt.sweep.sft_cache import sft_key
from rlpt.tasks.tool_task import ToolMultiplicationTask, tool_answer_reference


def _operands(task, batch):
    return [t.rstrip("=").split("*") for t in task.decode_prompt(batch["prompt"])]


def test_a_mix_labels_each_prompt_with_its_difficulty():
    task = ToolMultiplicationTask(easy_fraction=0.5, easy_max_digits=1)
    batch = task.make_batch(0, 0, 200)
    ops = _operands(task, batch)
    assert batch["difficulty"].tolist() == [max(len(a), len(b)) for a, b in ops]
    assert set(batch["difficulty"].tolist()) == {1, 3}
    assert 60 < int(np.sum(batch["difficulty"] == 1)) < 140   # about half of 200
    for (a, b), d, t, n in zip(ops, batch["difficulty"], batch["target"], batch["target_len"]):
        assert (len(a), len(b)) == ((1, 1) if d == 1 else (3, 2))
        assert task.tokenizer.decode(t[:n]) == str(int(a) * int(b))
    # no mix: no labels
    assert "difficulty" not in ToolMultiplicationTask().make_batch(0, 0, 8)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(easy_fraction=1.5), "easy_fraction=1.5"),
    (dict(easy_fraction=0.5, easy_max_digits=3), "easy_max_digits=3"),
    (dict(easy_fraction=0.5, easy_max_digits=0), "easy_max_digits=0"),
])
def test_bad_mixes_are_refused(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        ToolMultiplicationTask(**kwargs)


def test_arms_that_differ_only_in_reward_weights_share_the_sft_key():
    cfg = tool_calc.get_config("size=nano")
    key = lambda **kw: sft_key(_with(cfg, kw))
    base = key()
    assert key(call_cost=0.3) == key(answer_reward=2.0, tool_reward=1.0) == base
    assert key(easy_fraction=0.5) != base and key(call_fraction=0.2) != base


def _with(cfg, kwargs):
    c = cfg.copy_and_resolve_references()
    for k, v in kwargs.items():
        c.task.kwargs[k] = v
    return c


def test_the_tool_evaluation_reports_each_difficulty(monkeypatch):
    """Per label: accuracy and call rates over that label's prompts only (scripted per-sample
    outcomes in place of the model's: easy prompts answered directly and right, hard ones
    called, every second hard sample wrong)."""
    from rlpt.envs import tool_rollout
    cfg = tool_calc.get_config("size=nano")
    cfg.task.kwargs.easy_fraction = 0.5
    cfg.eval.n_samples, cfg.eval.ks = 2, (1, 2)
    cfg = validate(cfg)
    task = ToolMultiplicationTask(**cfg.task.kwargs)
    batch = task.eval_set(16)
    hard = batch["difficulty"] == 3
    assert 0 < hard.sum() < 16

    def outcomes(n):   # rows(params, batch, rng) -> {correct, called} per sample
        h = np.repeat(hard, n)
        wrong = h & (np.arange(16 * n) % 2 == 1)
        return lambda params, b, rng: {"correct": ~wrong, "called": h}
    monkeypatch.setattr(tool_rollout, "_tool_eval_fns", lambda *a: (outcomes(1), outcomes(2)))
    res = evaluate_tool(get_model_config("nano"), None, task, cfg, batch, None)
    assert res["call_rate_d1"] == res["greedy_call_rate_d1"] == 0.0
    assert res["call_rate_d3"] == res["greedy_call_rate_d3"] == 1.0
    assert res["call_rate"] == pytest.approx(hard.mean())
    assert res["pass@1_d1"] == res["pass@2_d1"] == res["greedy_acc_d1"] == 1.0
    assert res["pass@1_d3"] == 0.5 and res["pass@2_d3"] == 1.0   # one of each hard pair right
    greedy_hard = ~(np.arange(16) % 2 == 1)[hard]   # greedy: one sample per prompt
    assert res["greedy_acc_d3"] == pytest.approx(greedy_hard.mean())


def test_two_call_demonstrations_score_and_mask_both_results():
    """`addend_digits`: `a*b+c=` with demos `[a*b]<p>[p+c]<s>s`; a demo played back as model and
    tool tokens earns the reward, and the SFT loss skips both tool results."""
    task = ToolMultiplicationTask(addend_digits=3, call_fraction=1.0)
    b = task.make_batch(0, 0, 8)
    for i in range(8):
        prompt = task.tokenizer.decode(b["prompt"][i][b["prompt_mask"][i] > 0])
        a, rest = prompt.rstrip("=").split("*")
        x, c = (int(v) for v in rest.split("+"))
        want = str(int(a) * x + c)
        sol = b["solution"][i][b["solution_mask"][i] > 0]
        text = task.tokenizer.decode(sol)
        assert text == f"[{a}*{x}]<{int(a) * x}>[{int(a) * x}+{c}]<{want}>{want}", text
        loss_mask = b["solution_loss_mask"][i][b["solution_mask"][i] > 0]
        source = np.where(loss_mask > 0, 1, 2)                 # results are the tool's tokens
        assert (source == 2).sum() == len(str(int(a) * x)) + len(want) + 4
        ref = tool_answer_reference(sol, source, want, task.tokenizer)
        assert ref["correct"] == 1.0 and ref["num_calls"] == 2.0, (text, ref)
    with pytest.raises(ValueError, match="addend_digits=4"):
        ToolMultiplicationTask(addend_digits=4)

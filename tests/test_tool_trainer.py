"""The trainer with the tool rollout selected from config (`rollout.kind="tool"`): SFT -> RL with
ToolRLStep -> tool evaluation, in process; and the config checks of the rollout section."""
import json
import os

import numpy as np
import pytest

from configs import grpo_arith, tool_calc
from rlpt.config import validate


def _quick_cfg():
    cfg = tool_calc.get_config("size=nano,quick=1")
    cfg.wandb.mode = "disabled"
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    cfg.sft.steps, cfg.sft.batch_size, cfg.eval.n_prompts = 1, 8, 8
    cfg.eval.n_samples, cfg.eval.ks = 2, (1, 2)
    return cfg


@pytest.mark.slow  # ~25 s (4 compilations); the tests below and test_tool_rollout.py are fast
def test_trainer_runs_tool_rl_and_reports_call_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("RLPT_NO_PROGRESS", "1")
    from rlpt import train
    from rlpt.envs import tool_rollout
    built = []
    orig = tool_rollout.ToolRLStep.__init__

    def spy(self, *a, **kw):
        built.append(self)
        orig(self, *a, **kw)
    monkeypatch.setattr(tool_rollout.ToolRLStep, "__init__", spy)
    used = []
    for name in ("make_tool_sft_step", "evaluate_tool"):  # the tool SFT step and evaluation
        fn = getattr(train, name)
        record = lambda *a, _f=fn, _n=name, **k: used.append(_n) or _f(*a, **k)
        monkeypatch.setattr(train, name, record)
    summary = train.run(_quick_cfg(), str(tmp_path))
    assert len(built) == 1 and built[0].tcfg.max_calls == 2
    assert used == ["make_tool_sft_step", "evaluate_tool", "evaluate_tool"]
    for key in ("after_sft", "after_rl"):
        ev = summary[key]
        assert set(ev) >= {"greedy_acc", "pass@1", "pass@2", "call_rate", "greedy_call_rate"}
        assert all(0.0 <= ev[k] <= 1.0 for k in ev if k not in ("phase", "step"))
    rows = [json.loads(l) for l in open(os.path.join(tmp_path, "metrics.jsonl"))]
    rl = [r for r in rows if r["phase"] == "rl"]
    assert [r["step"] for r in rl] == [1, 2]
    for r in rl:  # ToolRLStep.fused metrics, logged by the trainer
        for k in ("call_rate", "call_success", "tool_token_frac", "loss", "reward_mean"):
            assert np.isfinite(r[k]), k
    sft = [r for r in rows if r["phase"] == "sft"]
    assert len(sft) == 1 and np.isfinite(sft[-1]["loss"])
    assert os.path.exists(os.path.join(tmp_path, "results.md"))


@pytest.mark.parametrize("edit,needle", [
    (lambda c: setattr(c.rollout, "kind", "agent"), "rollout.kind"),
    (lambda c: setattr(c.tool, "max_calls", -1), "config tool"),
    (lambda c: setattr(c.reward, "kind", "judge"), "reward"),
])
def test_tool_config_errors(edit, needle):
    cfg = tool_calc.get_config("size=nano")
    edit(cfg)
    with pytest.raises(ValueError, match=needle):
        validate(cfg)


def test_tool_rollout_needs_a_tool_task():
    cfg = grpo_arith.get_config("size=nano")
    cfg.rollout.kind = "tool"
    with pytest.raises(ValueError, match="needs a tool task"):
        validate(cfg)
    cfg.rollout.kind = "plain"
    validate(cfg)  # the default path is unchanged

"""The trainer with the tool rollout selected from config (`rollout.kind="tool"`): SFT -> RL with
the generic step with the tool rollout -> tool evaluation, in process; and the config checks of
the rollout section."""
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
    from rlpt import build, train
    from rlpt.envs import calculator_env
    from rlpt.evaluation import rollout as evaluation
    built = []  # the ToolConfig of every tool rollout the trainer builds (the calculator
    real_rollout = calculator_env.tool_rollout   # environment's compiled protocol)
    monkeypatch.setattr(calculator_env, "tool_rollout",
                        lambda tcfg: built.append(tcfg) or real_rollout(tcfg))
    used, sft_masks = [], []
    real_eval, real_sft = evaluation.evaluate_tool, build.sft_step

    def eval_spy(*a, **k):  # the tool evaluation
        used.append("evaluate_tool")
        return real_eval(*a, **k)

    def sft_spy(model_cfg, optimizer, loss_mask="solution_mask"):  # the SFT step
        used.append("sft_step")
        sft_masks.append(loss_mask)
        return real_sft(model_cfg, optimizer, loss_mask)
    monkeypatch.setattr(evaluation, "evaluate_tool", eval_spy)
    monkeypatch.setattr(build, "sft_step", sft_spy)
    summary = train.run(_quick_cfg(), str(tmp_path))
    assert len(built) == 1 and built[0].max_calls == 2
    assert used == ["sft_step", "evaluate_tool", "evaluate_tool"]
    assert sft_masks == ["solution_loss_mask"]  # the tool SFT: loss on the model tokens only
    for key in ("after_sft", "after_rl"):
        ev = summary[key]
        assert set(ev) >= {"greedy_acc", "pass@1", "pass@2", "call_rate", "greedy_call_rate"}
        assert all(0.0 <= ev[k] <= 1.0 for k in ev if k not in ("phase", "step"))
    rows = [json.loads(l) for l in open(os.path.join(tmp_path, "metrics.jsonl"))]
    rl = [r for r in rows if r["phase"] == "rl"]
    assert [r["step"] for r in rl] == [1, 2]
    for r in rl:  # the fused step's metrics (tool rollout metrics), logged by the trainer
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

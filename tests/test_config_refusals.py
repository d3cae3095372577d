"""Degenerate configurations are refused up front (issue 12): each a `config <key>: ...`
ValueError from validate (or validate_vocab once the model is built), before anything compiles;
an unknown --config key is one line."""
import math
import re
import subprocess
import sys

import pytest

from configs import grpo_arith
from conftest import REPO_ROOT
from rlpt.config import default_algo, validate, validate_vocab


def cfg_with(base=None, **overrides):
    """`base` (default: configs/grpo_arith.py at size nano) with `a__b=v` setting field a.b."""
    cfg = grpo_arith.get_config("size=nano") if base is None else base
    for key, value in overrides.items():
        *path, leaf = key.split("__")
        target = cfg
        for part in path:
            target = target[part]
        target[leaf] = value
    return cfg


@pytest.mark.parametrize("overrides,key", [
    ({"sampling__num_samples": 1}, "sampling.num_samples"),                  # GRPO, G = 1
    ({"sampling__num_samples": 1, "algo__advantage": "rloo"}, "sampling.num_samples"),
    ({"sampling__num_samples": 1, "algo__advantage": "reinforce_pp"}, "sampling.num_samples"),
    ({"rl__iters_per_call": 4}, "rl.iters_per_call"),                        # log_every=10
    ({"rl__iters_per_call": 5, "log_every": 5, "ckpt_every": 5, "eval__every": 50,
      "rl__steps": 1002}, "rl.iters_per_call"),
    ({"eval__n_prompts": 0}, "eval.n_prompts"),
    ({"eval__n_samples": 0, "eval__ks": ()}, "eval.n_samples"),
    ({"eval__n_samples": 8, "eval__sample_chunk": 3}, "eval.sample_chunk"),   # not a divisor
    ({"eval__sample_chunk": -1}, "eval.sample_chunk"),
    ({"eval__seed": -2}, "eval.seed"),
    ({"eval__seed": 1.5}, "eval.seed"),
    ({"algo__name": "dpo"}, "algo.name"),
    ({"sampling__top_k": -1}, "sampling.top_k"),
    ({"optim__lr": math.nan}, "optim.lr"),
    ({"algo__beta": math.inf}, "algo.beta"),
    ({"nonfinite__stop_after": -1}, "nonfinite.stop_after"),
    ({"nonfinite__on_reward": "ignore"}, "nonfinite.on_reward"),
    # every optimizer field's range (issue 29): a negative clip norm was gradient ascent
    ({"sft__optim__max_grad_norm": -1.0}, "sft.optim.max_grad_norm"),
    ({"optim__max_grad_norm": -0.5}, "optim.max_grad_norm"),
    ({"optim__b2": 1.5}, "optim.b2"),
    ({"optim__b2": 1.0}, "optim.b2"),
    ({"sft__optim__b1": -0.1}, "sft.optim.b1"),
    ({"optim__eps": 0.0}, "optim.eps"),
    ({"optim__weight_decay": -1e-2}, "optim.weight_decay"),
    ({"optim__warmup_steps": -1}, "optim.warmup_steps"),
    ({"optim__decay_steps": -5}, "optim.decay_steps"),
    ({"optim__final_lr_fraction": 1.5}, "optim.final_lr_fraction"),
    ({"optim__b1": math.nan}, "optim.b1"),
    ({"optim__schedule": "cosine", "optim__decay_steps": 0}, "optim.decay_steps"),
])
def test_degenerate_config_is_refused_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match="^config " + re.escape(key) + ": "):
        validate(cfg_with(**overrides))


@pytest.mark.parametrize("overrides,key", [
    ({"algo__beta": math.nan}, "algo.beta"),        # was accepted and the run went on
    ({"algo__beta": -math.inf}, "algo.beta"),
    ({"rm__optim__b2": 1.5}, "rm.optim.b2"),
    ({"optim__max_grad_norm": -1.0}, "optim.max_grad_norm"),
    ({"sft__optim__eps": -1e-8}, "sft.optim.eps"),
])
def test_preference_config_refuses_nonfinite_and_out_of_range_hyperparameters(overrides, key):
    from configs import dpo_arith
    from rlpt.preference.config import validate as validate_preference
    cfg = cfg_with(dpo_arith.get_config("algo=dpo,size=nano"), **overrides)
    with pytest.raises(ValueError, match="^config " + re.escape(key) + ": "):
        validate_preference(cfg)


def test_optimizer_ranges_accept_the_edges():
    validate(cfg_with(optim__max_grad_norm=0.0, optim__b1=0.0, optim__weight_decay=0.0,
                      optim__warmup_steps=0, optim__final_lr_fraction=1.0))
    validate(cfg_with(optim__schedule="cosine", optim__warmup_steps=10, optim__decay_steps=11))


def test_preference_algorithm_in_the_rl_trainer_points_to_the_preference_trainer():
    with pytest.raises(ValueError, match="rlpt.preference.train"):
        validate(cfg_with(algo__name="dpo"))


def test_a_valid_config_passes_and_single_sample_ppo_is_allowed():
    validate(cfg_with())
    validate(cfg_with(rl__iters_per_call=5, log_every=5, ckpt_every=50, eval__every=50))
    ppo = grpo_arith.get_config("size=nano")
    from rlpt.config import default_algo
    ppo.algo = default_algo("ppo")
    ppo.algo.group_size = -1
    ppo.sampling.num_samples = 1         # GAE with a value head needs no group
    validate(ppo)


def test_vocabulary_checks_after_the_model_is_built():
    cfg = validate(cfg_with())
    validate_vocab(cfg, 64, 64)
    with pytest.raises(ValueError, match=r"config model.vocab_size: the model's vocabulary \(50\)"
                                         r" is smaller than the tokenizer's \(64\)"):
        validate_vocab(cfg, 50, 64)
    cfg.sampling.stop_tokens = (2, 70)
    with pytest.raises(ValueError, match=r"config sampling.stop_tokens: id\(s\) \[70\]"):
        validate_vocab(cfg, 64, 64)
    cfg.sampling.stop_tokens, cfg.sampling.pad_id = (2,), -1
    with pytest.raises(ValueError, match=r"config sampling.pad_id"):
        validate_vocab(cfg, 64, 64)


def test_unknown_config_key_is_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "rlpt.train", "--config=configs/grpo_arith.py:quick=1",
         "--config.sampling.topk=3", "--workdir=/tmp/rlpt_never_written"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
    assert lines == ['rlpt.train: error: unknown config key sampling.topk (Did you mean "top_k" '
                     'instead of "topk"?) (--help lists the flags)'], lines


@pytest.mark.parametrize("args,message", [
    (["--config=configs/grpo_arith.py:sizee=nano", "--workdir=W"],
     "rlpt.train: error: --config=configs/grpo_arith.py:sizee=nano: unknown config argument "
     "'sizee'; known: ['lrs', 'quick', 'seed', 'seeds', 'size']"),
    (["--config=configs/nope.py", "--workdir=W"], "rlpt.train: error: --config: no such file "
                                                  "'configs/nope.py'"),
    (["--config", "configs/grpo_arith.py"], "rlpt.train: error: --workdir=... is required"),
    (["--config=configs/grpo_arith.py", "--config.rl.steps=abc", "--workdir", "W"],
     "rlpt.train: error: flag --config.rl.steps=abc: invalid literal for int() with base 10: "
     "'abc'"),
])
def test_command_line_mistakes_are_one_line_with_status_2(args, message, tmp_path):
    """absl printed `FATAL Flags parsing error` with a nested traceback (exit 1) for a bad
    argument of the config file, and a 30-line traceback for a missing config file."""
    args = [a.replace("W", str(tmp_path / "w")) if a in ("W", "--workdir=W") else a
            for a in args]
    out = subprocess.run([sys.executable, "-m", "rlpt.train", *args], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    lines = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
    assert out.returncode == 2 and lines == [message + " (--help lists the flags)"], lines
    assert not (tmp_path / "w").exists()


def test_help_lists_the_flags_and_exits_0():
    out = subprocess.run([sys.executable, "-m", "rlpt.train", "--help"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--config=FILE[:ARGS]", "--config.KEY=VALUE", "--workdir=DIR",
                 "--allow_config_change"):
        assert flag in out.stdout


def test_a_missing_teacher_checkpoint_is_refused_before_training(tmp_path):
    """validate() accepts a config naming a file still to be made; check_files (called by
    rlpt.train.run and rlpt.sweep.main.run_sweep before compiling) refuses it, naming field and
    path; an existing path passes."""
    from rlpt.algorithms.base import check_files
    from rlpt.train import run
    cfg = grpo_arith.get_config()
    cfg.algo = default_algo("kdrl")
    cfg.algo.update(teacher_source="checkpoint", teacher_checkpoint=str(tmp_path / "nope"))
    cfg = validate(cfg)
    with pytest.raises(ValueError, match=r"algo\.teacher_checkpoint: '.*nope' does not exist"):
        check_files(cfg)
    with pytest.raises(ValueError, match="teacher_checkpoint"):
        run(cfg, str(tmp_path / "wd"))
    assert not (tmp_path / "wd" / "metrics.jsonl").exists()
    cfg.algo.teacher_checkpoint = str(tmp_path)
    check_files(cfg)
    cfg.algo.teacher_source = "policy"
    check_files(cfg)

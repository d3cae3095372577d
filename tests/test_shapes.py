"""`python -m rlpt.shapes` (a config's fused step compiled from shapes alone) and
configs/qwen_rlvr.py, the Qwen2.5 config it is meant for: the config validates for each Qwen2.5
preset, a command line compiles it (a nano model in the default suite; the real Qwen2.5-0.5B
shapes at 1,024 new tokens in the slow one, which must fit 80 GB) and writes shapes.json, and a
mistake in it is one line with status 2."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from rlpt.config import load_config, validate

QWEN = os.path.join(REPO_ROOT, "configs", "qwen_rlvr.py")


def _shapes(arg, tmp_path, *flags, env=None):
    cmd = [sys.executable, "-m", "rlpt.shapes", f"--config={QWEN}:{arg}",
           f"--workdir={tmp_path / 'shapes'}", *flags]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("preset", ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"])
def test_qwen_config_validates_with_every_feature_on(preset):
    c = validate(load_config(f"{QWEN}:preset={preset}"))
    assert (c.model.remat, c.model.attention, c.model.logits_chunk) == ("block", "blockwise", 128)
    assert (c.model.dtype, c.lora.rank, c.rl.grad_accum) == ("bfloat16", 16, 8)
    assert c.sampling.max_new_tokens == 1024 and c.sampling.stop_tokens == (151645,)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_a_nano_model_compiles_from_shapes_and_writes_its_memory(tmp_path):
    proc = _shapes("preset=nano,new_tokens=16,prompts=2,samples=2,grad_accum=2", tmp_path,
                   "--config.model.logits_chunk=8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.load(open(tmp_path / "shapes" / "shapes.json"))
    assert out["preset"] == "nano" and out["new_tokens"] == 16 and out["devices"] == 1
    assert out["total"] == out["temp"] + out["argument"] > 0
    assert "rlpt.shapes: nano, 2 prompts x 2 samples x 16 new tokens" in proc.stdout


def test_a_mistake_is_one_line_with_status_2(tmp_path):
    proc = _shapes("preset=nano,new_tokens=16", tmp_path)   # logits_chunk 128 does not divide 16
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "model.logits_chunk" in proc.stderr
    assert not (tmp_path / "shapes").exists()


def test_training_without_a_checkpoint_says_what_to_pass(tmp_path):
    """The config compiles from shapes without weights; training needs the checkpoint (its
    tokenizer): one line, status 2, no workdir left behind."""
    proc = subprocess.run([sys.executable, "-m", "rlpt.train", f"--config={QWEN}",
                           f"--workdir={tmp_path / 'run'}"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr[-2000:]
    assert "task.kwargs.tokenizer_path" in proc.stderr and "checkpoint=" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow   # about 2 minutes of compiling
def test_qwen_0_5b_at_1024_new_tokens_fits_80_gb_from_shapes(tmp_path):
    proc = _shapes("", tmp_path, env={"XLA_FLAGS": "--xla_disable_hlo_passes=cse_barrier_expander"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.load(open(tmp_path / "shapes" / "shapes.json"))
    assert out["preset"] == "qwen2.5-0.5b" and out["new_tokens"] == 1024
    assert out["total"] < 80e9, out

"""Every file of configs/ builds and validates: its `get_config("")` (and `quick=1` where the file
takes it), and for sweep configs every point of `get_sweep("")` applied to the base, all before
anything compiles (rlpt.sweep.main.load_sweep, rlpt.sweep.points.points_to_configs). Catches a
config broken by a library change before a user's hour-long sweep does."""
import glob
import os

import pytest

from conftest import REPO_ROOT
from rlpt.config import config_file, load_config, validate
from rlpt.preference.config import validate as validate_preference
from rlpt.sweep.main import load_sweep
from rlpt.sweep.points import group_points, points_to_configs

# grpo_gsm8k.py needs a tokenizer file argument: tests/test_gsm8k_rl.py builds and runs it.
# smollm2_rlvr.py reads its checkpoint's tokenizer (../shared/data/smollm2):
# tests/test_smollm2.py validates and builds it (skipped without the file).
# recipes.py is no config: the recipes the config files share (used by every test here).
ELSEWHERE = {"__init__.py", "grpo_gsm8k.py", "smollm2_rlvr.py", "recipes.py"}
CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO_ROOT, "configs", "*.py"))
                 if os.path.basename(p) not in ELSEWHERE)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_file_validates(path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    module = config_file(path)
    args = [""]
    if "quick" in getattr(module, "ARGS", {}) or "quick" in (module.__doc__ or ""):
        args.append("quick=1")
    for arg in args:
        cfg = module.get_config(arg)
        (validate_preference if "pref" in cfg else validate)(cfg)
    if hasattr(module, "get_sweep"):
        base, points = load_sweep(os.path.relpath(path, REPO_ROOT))
        groups = group_points(points_to_configs(base, points))
        assert sum(len(g.points) for g in groups) == len(points) >= 1


def test_there_are_config_files():
    assert len(CONFIGS) >= 5


def test_load_config_reads_the_argument_and_names_a_missing_file():
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "grpo_arith.py") + ":size=nano,seed=3")
    assert cfg.model.preset == "nano" and cfg.seed == 3
    with pytest.raises(FileNotFoundError, match="no such config file 'configs/nosuch.py'"):
        load_config("configs/nosuch.py:seed=1")

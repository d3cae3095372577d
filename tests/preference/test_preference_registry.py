"""Preference optimisation and reward models are algorithms of the one registry: every
preference algorithm and reward-model kind resolves by name to its record (rlpt/algorithms/
<name>.py) with the right kind, paper defaults and declared dynamic fields; an unknown name is an
error listing the known ones; the preference steps ask no algorithm names."""
import os
import re

import pytest

from conftest import REPO_ROOT
from rlpt import registry
from rlpt.config import load_config
from rlpt.preference.config import algo_config, preference_config, rm_config, validate
from rlpt.preference.records import names_of_kind, rm_kinds, rm_name

PREFERENCE = ("dpo", "ipo", "cdpo", "rdpo", "simpo", "pre_dpo", "online_dpo", "drpo")
RM_KINDS = ("bt", "vrpo", "rlaif_soft", "rluf", "rlsf")


@pytest.mark.parametrize("name", PREFERENCE)
def test_every_preference_algorithm_is_a_record(name):
    record = registry.get("algorithm", name)
    assert record.name == name and record.kind == "preference" and callable(record.loss)
    assert record.defaults and set(record.dynamic) <= {"beta", "tau", "eps", "gamma", "c", "b"}
    cfg = algo_config(name)
    assert cfg.name == name and {k: cfg[k] for k in record.defaults} == record.defaults


@pytest.mark.parametrize("kind", RM_KINDS)
def test_every_reward_model_kind_is_a_record(kind):
    record = registry.get("algorithm", rm_name(kind))
    assert record.name == f"rm_{kind}" and record.kind == "reward_model" and callable(record.loss)
    assert set(record.dynamic) <= set(record.defaults)
    cfg = rm_config(kind)
    assert cfg.kind == kind and all(cfg[k] == v for k, v in record.defaults.items())


def test_the_kinds_list_exactly_these():
    assert set(names_of_kind("preference")) == set(PREFERENCE)
    assert set(rm_kinds()) == set(RM_KINDS)
    pg = names_of_kind("policy_gradient")
    assert "grpo" in pg and not set(pg) & set(PREFERENCE)


def test_paper_defaults():
    get = lambda n: registry.get("algorithm", n).defaults
    assert get("dpo")["beta"] == get("cdpo")["beta"] == get("rdpo")["beta"] == 0.1
    assert (get("cdpo")["eps"], get("rdpo")["eps"], get("ipo")["tau"]) == (0.1, 0.1, 0.1)
    assert (get("simpo")["beta"], get("simpo")["gamma"]) == (2.0, 0.5)
    d = get("drpo")
    assert (d["beta"], d["c"], d["b"], d["is_weight"]) == (0.04, 2.5, 0.5, "clip")
    assert (get("online_dpo")["sync_every"], get("online_dpo")["num_samples"]) == (1, 8)


def test_a_made_up_name_lists_the_known_names():
    with pytest.raises(KeyError, match=r"unknown algorithm 'dpo_made_up'.*'dpo'.*'rm_bt'"):
        registry.get("algorithm", "dpo_made_up")
    cfg = preference_config("policy", "dpo")
    cfg.algo.name = "dpo_made_up"
    with pytest.raises(ValueError, match=r"^config algo.name: unknown preference algorithm "
                       r"'dpo_made_up'; known: \[.*'simpo'"):
        validate(cfg)
    with pytest.raises(ValueError, match=r"^config algo.name: unknown preference algorithm 'grpo'"):
        algo_config("grpo")                       # a policy-gradient algorithm is not one
    cfg = preference_config("reward_model", rm_kind="bt")
    cfg.rm.kind = "made_up"
    with pytest.raises(ValueError, match=r"^config rm.kind: unknown reward-model kind 'made_up'; "
                       r"known: \[.*'vrpo'"):
        validate(cfg)


def test_reward_model_algo_name_follows_rm_kind():
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "rm_arith.py") + ":kind=rluf,quick=1")
    assert cfg.algo.name == "rm_rluf"
    validate(cfg)
    cfg.algo.name = "rm_bt"
    with pytest.raises(ValueError, match="^config algo.name: 'rm_bt' but rm.kind is 'rluf'"):
        validate(cfg)


def test_the_preference_steps_ask_no_algorithm_names():
    """The steps, trainer and config of rlpt/preference/ run any record: no `self.name`, no
    `<x>.name ==`, no `name in (...)` and no `kind ==` on a config's kind; the only `kind ==`
    left compare a registry record's trainer kind ("preference" / "reward_model")."""
    names = re.compile(r"self\.name|\.name\s*==|\bname\s*(==|in)\s*\(|\brm\.kind\s*==")
    kinds = re.compile(r"kind\s*[!=]=")
    root = os.path.join(REPO_ROOT, "rlpt", "preference")
    lines = [(f, i, line.strip()) for f in sorted(os.listdir(root)) if f.endswith(".py")
             for i, line in enumerate(open(os.path.join(root, f)), 1)]
    assert [l for l in lines if names.search(l[2])] == []
    record_kind = re.compile(r"(registry\.get\(.*\)|\brecord)\.kind\s*[!=]=")
    assert [l for l in lines if kinds.search(l[2]) and not record_kind.search(l[2])] == []

"""Robustness experiments' data (rlpt.tasks.label_noise): flipped pairs and group scores at the
configured rate, deterministic, clean held-out data; the config refuses bad rates; a preference
sweep (one run per point, in the preference trainer) runs Pre-DPO and DPO on flipped pairs; a
deliberately wrong reference (pref.reference="init")."""
import json

import numpy as np
import pytest

from rlpt.errors import UserError
from rlpt.tasks.label_noise import flip_group_scores, flip_pairs
from rlpt.tasks.synthetic import AdditionTask
from rlpt.tasks.synthetic_pairs import SyntheticPairs


def _pairs(n=2000):
    return SyntheticPairs(AdditionTask(min_digits=1, max_digits=2)).make_batch(0, 0, n)


def test_flip_pairs_swaps_about_rate_of_the_rows_and_nothing_else():
    b = _pairs()
    out = flip_pairs(b, 0.3, seed=3, step=5)
    swapped = np.all(out["chosen"] == b["rejected"], axis=1)
    kept = np.all(out["chosen"] == b["chosen"], axis=1)
    assert np.all(swapped ^ kept)                         # every row one or the other
    assert np.all(out["rejected"][swapped] == b["chosen"][swapped])
    assert np.all(out["chosen_mask"][swapped] == b["rejected_mask"][swapped])
    assert abs(swapped.mean() - 0.3) < 0.04               # 2000 rows: sd of the share ~0.01
    for k in ("prompt", "prompt_mask", "target", "target_len"):
        assert out[k] is b[k]
    again = flip_pairs(b, 0.3, seed=3, step=5)
    assert all(np.array_equal(out[k], again[k]) for k in out)
    other = flip_pairs(b, 0.3, seed=3, step=6)
    assert not np.array_equal(other["chosen"], out["chosen"])
    assert flip_pairs(b, 0.0, 3, 5) is b


def test_flip_group_scores_moves_the_gold_label_to_a_wrong_response():
    g = SyntheticPairs(AdditionTask(min_digits=1, max_digits=2)).make_groups(0, 0, 1000, 4)
    out = flip_group_scores(g, 0.4, seed=1, step=2)
    assert np.all(g["scores"].sum(1) == 1)                # one gold response per group
    moved = np.argmax(out["scores"], 1) != np.argmax(g["scores"], 1)
    assert abs(moved.mean() - 0.4) < 0.05
    assert np.all(np.sort(out["scores"], 1) == np.sort(g["scores"], 1))   # a permutation
    assert np.array_equal(out["responses"], g["responses"])
    assert not np.shares_memory(out["scores"], g["scores"])


@pytest.mark.parametrize("key,value", [("pref.flip_rate", 1.0), ("pref.flip_rate", -0.1),
                                       ("rm.flip_rate", "0.2")])
def test_bad_flip_rates_are_refused_naming_the_key(key, value):
    from configs import dpo_arith
    from rlpt.preference.config import validate
    c = dpo_arith.get_config("quick=1")
    group, leaf = key.split(".")
    c[group][leaf] = value
    with pytest.raises(UserError, match=f"config {key}: "):
        validate(c)


@pytest.mark.slow   # ~30 s; the faked sweeps of tests/test_experiment_analyses.py run the same
# sweep machinery (validation, grouping, the table) on preference configs in the default suite
def test_a_preference_sweep_runs_each_point_in_the_preference_trainer(tmp_path):
    """configs/pre_dpo_vs_dpo.py (quick, 1 seed, 20% of pairs flipped): each point runs alone
    (the group's reason names the preference trainer), the table reads the preference
    summaries (after SFT -> after training), and Pre-DPO logged its guide phase."""
    from configs import pre_dpo_vs_dpo
    from rlpt.sweep.main import run_sweep
    arg = "quick=1,seeds=1,arms=dpo/pre_dpo,flip=0.2"
    res = run_sweep(pre_dpo_vs_dpo.get_config(arg), pre_dpo_vs_dpo.get_sweep(arg),
                    str(tmp_path / "sw"), progress=False)
    assert [g["vmapped"] for g in res["groups"]] == [False, False]
    assert "preference trainer" in res["groups"][0]["reason"]
    table = (tmp_path / "sw" / "table.md").read_text()
    assert "after SFT -> after training" in table and "| algo.name=pre_dpo | 1 |" in table
    rows = [json.loads(x) for x in
            open(tmp_path / "sw" / "points" / "algo.name=pre_dpo,seed=0" / "metrics.jsonl")]
    assert {r["phase"] for r in rows} >= {"sft", "guide", "pref", "pref_eval"}
    cfg = json.loads((tmp_path / "sw" / "points" / "algo.name=dpo,seed=0" / "config.json")
                     .read_text())
    assert cfg["pref"]["flip_rate"] == 0.2


@pytest.mark.slow   # two short runs (~40 s): the default suite's time (README, Tests)
def test_a_wrong_reference_is_the_model_before_sft(tmp_path):
    """pref.reference="init": the reference is the model before SFT. At the first evaluation
    the policy is the SFT model, so against the SFT reference every implicit margin is 0
    (pair_acc 0), against the untrained one it is not; the policy's own pair accuracy does not
    depend on the reference. Pre-DPO (whose reference is its guide) refuses it once its guide
    is trained."""
    from configs import dpo_arith
    from rlpt.preference.config import validate
    from rlpt.preference.train import run
    first = {}
    for ref in ("sft", "init"):
        c = dpo_arith.get_config("quick=1")
        c.pref.reference = ref
        run(c, str(tmp_path / ref))
        rows = [json.loads(x) for x in open(tmp_path / ref / "metrics.jsonl")]
        first[ref] = [r for r in rows if r["phase"] == "pref_eval"][0]
    assert first["sft"]["pair_acc"] == 0.0 and first["init"]["pair_acc"] > 0.0
    assert first["sft"]["policy_pair_acc"] == first["init"]["policy_pair_acc"]
    c = dpo_arith.get_config("algo=pre_dpo,quick=1")
    c.pref.reference = "init"
    with pytest.raises(UserError, match="config pref.reference: 'init' with algo.name='pre_dpo'"):
        run(c, str(tmp_path / "pre_dpo"))
    c.pref.reference = "guide"
    with pytest.raises(UserError, match="config pref.reference: 'guide'; expected"):
        validate(c)

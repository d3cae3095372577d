"""experiments.analysis on a hand-made sweep directory: runs by arm and seed, windows, paired
intervals, smoothing (the numbers checked by hand)."""
import json
import math
import os
import warnings

import numpy as np
import pytest

from configs import tool_calc
from experiments.analysis import (analysis_main, arms_table, comparison_table, early_late,
                                  eval_value, fmt_ci, heldout_rows, last_rl_step, load_arms,
                                  load_runs, paired, merge_runs, pass_ks, rl_value,
                                  rl_window_rows, smooth, summary_value, window_mean, windowed)


def _point(root, name, rl_values, summary=None):
    d = os.path.join(root, "points", name)
    os.makedirs(d)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        f.write(json.dumps({"phase": "sft", "step": 1, "loss": 1.0}) + "\n")
        for step, v in enumerate(rl_values, 1):
            f.write(json.dumps({"phase": "rl", "step": step, "accuracy": v}) + "\n")
        f.write(json.dumps({"phase": "eval", "step": len(rl_values), "pass@1": 0.5}) + "\n")
    if summary is not None:
        json.dump(summary, open(os.path.join(d, "summary.json"), "w"))


def test_load_windows_and_paired_differences(tmp_path):
    root = str(tmp_path)
    for seed in (0, 1):
        _point(root, f"algo.name=grpo,seed={seed}", [0.1, 0.2, 0.3, 0.4],
               {"after_rl": {"pass@1": 0.5 + seed}})
        _point(root, f"algo.name=gtpo,algo.eps_high=0.28,seed={seed}", [0.2, 0.4, 0.6, 0.8])
    runs = load_runs(root)
    assert sorted(runs) == ["grpo", "gtpo"] and sorted(runs["grpo"]) == [0, 1]
    run = runs["gtpo"][1]
    assert [r["step"] for r in run["rl"]] == [1, 2, 3, 4] and len(run["eval"]) == 1
    assert run["summary"] is None and math.isnan(summary_value(run, "after_rl", "pass@1"))
    assert summary_value(runs["grpo"][1], "after_rl", "pass@1") == 1.5
    assert early_late(200) == ((1, 20), (151, 200)) and early_late(4) == ((1, 1), (4, 4))
    assert window_mean(run["rl"], "accuracy", 2, 3) == pytest.approx(0.5)
    assert window_mean(run["rl"], "accuracy", 1, 4, keep=lambda r: r["accuracy"] < 0.5) == \
        pytest.approx(0.3)
    assert math.isnan(window_mean(run["rl"], "nosuch", 1, 4))
    values = {a: [window_mean(runs[a][s]["rl"], "accuracy", 3, 4) for s in (0, 1)]
              for a in runs}
    ci = paired(values, "gtpo", "grpo")   # 0.7 - 0.35 on both seeds: zero spread
    assert ci["n"] == 2 and ci["mean"] == pytest.approx(0.35) and ci["hi"] - ci["lo"] < 1e-9
    assert pass_ks({"pass@16": 0, "pass@2": 0, "greedy_acc": 0, "pass@1_d2": 0}) == [2, 16]
    assert fmt_ci({"mean": 0.25, "n": 1}) == "0.250 (n=1)"
    assert fmt_ci({"mean": 0.25, "lo": 0.2, "hi": 0.3, "n": 3}, 2) == "0.25 [0.20, 0.30]"


def test_analysis_main_writes_the_three_files(tmp_path, capsys):
    _point(str(tmp_path), "seed=0", [0.5, 1.0])
    out = tmp_path / "out"
    out.mkdir()
    seen = []
    analysis_main(__file__, "res", lambda runs: (f"{len(runs['all'])} run", {"n": 1}),
                  lambda runs, data, path: seen.append((data, path)),
                  argv=[str(tmp_path), "--out", str(out)])
    assert (out / "res.md").read_text() == "1 run" and json.loads((out / "res.json").read_text())
    assert seen == [({"n": 1}, str(out / "res.png"))] and "1 run" in capsys.readouterr().out


def test_a_follow_up_sweeps_arms_merge_with_the_first_sweeps(tmp_path):
    first, follow = str(tmp_path / "a"), str(tmp_path / "b")
    _point(first, "algo.name=grpo,seed=0", [0.1])
    _point(follow, "algo.name=uft,seed=0", [0.2])
    runs = merge_runs([load_runs(first), load_runs(follow)])
    assert sorted(runs) == ["grpo", "uft"] and list(runs["uft"]) == [0]
    with pytest.raises(ValueError, match="arm 'grpo' seed 0 is in two"):
        merge_runs([load_runs(first), load_runs(first)])
    other = str(tmp_path / "c")   # another SFT model: its evaluation after SFT differs
    _point(other, "algo.name=gtpo,seed=0", [0.3])
    runs_c = load_runs(other)
    runs_c["gtpo"][0]["eval"][0]["pass@1"] = 0.9
    with pytest.warns(UserWarning, match="seed 0: .* do not share their SFT model"):
        merge_runs([load_runs(first), runs_c])
    # arms evaluated another way by design (the calculator in the rollout or not) or warmed up
    # on other data are not compared; the same warm-up evaluated the same way is
    tool = tool_calc.get_config("size=nano").to_dict()
    plain = dict(tool, rollout={"kind": "plain"})
    other_size = dict(tool, task=dict(tool["task"], kwargs=dict(tool["task"]["kwargs"],
                                                                 max_digits_a=2)))
    for cfg_c, warns in ((plain, False), (other_size, False), (tool, True)):
        runs_a, runs_c = load_runs(first), load_runs(other)
        runs_a["grpo"][0]["cfg"], runs_c["gtpo"][0]["cfg"] = tool, cfg_c
        runs_c["gtpo"][0]["eval"][0]["pass@1"] = 0.9
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            merge_runs([runs_a, runs_c])
        assert bool(seen) == warns, cfg_c["rollout"]
    # through the command line: two sweep directories
    out = tmp_path / "out"
    out.mkdir()
    analysis_main(__file__, "res", lambda runs: (" ".join(sorted(runs)), {}),
                  lambda runs, data, path: None, argv=[first, follow, "--out", str(out)])
    assert (out / "res.md").read_text() == "grpo uft"


def test_load_arms_names_arms_from_overrides_and_config(tmp_path):
    root = str(tmp_path)
    for name in ("algo.name=uft,seed=0", "algo.name=uft,algo.hint_steps=100,seed=0"):
        _point(root, name, [0.1])
    arm_of = lambda overrides, cfg: overrides.replace("algo.name=", "").replace(
        ",algo.hint_steps=", "_h")
    assert sorted(load_arms(root, arm_of)) == ["uft", "uft_h100"]
    with pytest.raises(ValueError, match="unknown arm 'uft_h100'"):
        load_arms(root, arm_of, known=("uft",))
    with pytest.raises(ValueError, match="two settings of arm 'uft'"):
        load_arms(root, lambda overrides, cfg: "uft")


def test_single_arm_sweeps_and_errors(tmp_path):
    _point(str(tmp_path), "seed=3", [1.0])
    assert list(load_runs(str(tmp_path))) == ["all"]
    with pytest.raises(FileNotFoundError, match="no points"):
        load_runs(str(tmp_path / "empty"))


def test_smooth_is_a_trailing_mean_over_finite_values():
    got = smooth([1.0, np.nan, 3.0, 5.0], k=2)
    np.testing.assert_allclose(got, [1.0, 1.0, 3.0, 4.0])


def test_comparison_table_and_length_values(tmp_path):
    """comparison_table: per-arm intervals and paired differences against the baseline over the
    seeds both arms have; rl_value skips lengths that a step cannot have."""
    root = str(tmp_path)
    for seed in (0, 1, 2):
        _point(root, f"algo.name=grpo,seed={seed}", [0.1, 0.2, 0.3, 0.4],
               {"after_rl": {"pass@1": 0.5}})
    for seed in (0, 1):
        _point(root, f"algo.name=gtpo,seed={seed}", [0.2, 0.4, 0.6, 0.8 + seed],
               {"after_rl": {"pass@1": 0.25}})
    runs = load_runs(root)
    rows = [("late acc", windowed("accuracy", "late", 4), 2)] + heldout_rows(["pass@1"],
                                                                              ["after_rl"])
    text, data = comparison_table(runs, ["grpo", "gtpo"], {"grpo": "A", "gtpo": "B"}, rows,
                                  "grpo", "note; ")
    assert text.startswith("note; seeds [0, 1];") and "| metric | A | B | B - A |" in text
    late = data["rows"]["late acc"]   # window (4, 4): grpo 0.4, 0.4; gtpo 0.8, 1.8
    assert late["per_seed"] == {"grpo": [0.4, 0.4], "gtpo": [0.8, 1.8]}
    assert late["diff_vs_grpo"]["gtpo"]["mean"] == pytest.approx(0.9)
    assert data["rows"]["held-out pass@1 after rl"]["ci"]["gtpo"]["mean"] == 0.25
    assert last_rl_step(runs, ["grpo"]) == 4
    row = {"accuracy": 1.0, "reward_response_len_wrong": 7.0, "reward_response_len_correct": 5.0,
           "stopped_frac": 0.75}
    assert math.isnan(rl_value(row, "reward_response_len_wrong"))
    assert rl_value(row, "reward_response_len_correct") == 5.0
    assert rl_value(row, "stopped_frac") == 0.25 and math.isnan(rl_value(row, "nosuch"))
    assert math.isnan(rl_value(dict(row, accuracy=0.0), "reward_response_len_correct"))


def test_arms_table_rows_and_the_evaluations_in_between(tmp_path):
    root = str(tmp_path)
    ev = lambda step, acc: {"greedy_acc": acc, "pass@1": acc / 2, "pass@4": acc}
    for arm, acc in (("grpo", 0.5), ("gtpo", 0.75)):
        for seed in (0, 1):
            _point(root, f"algo.name={arm},seed={seed}", [0.1, 0.2, 0.3, 0.4],
                   {"after_sft": ev(0, 0.25), "after_rl": ev(4, acc)})
            with open(os.path.join(root, "points", f"algo.name={arm},seed={seed}",
                                   "metrics.jsonl"), "a") as f:   # an evaluation half-way
                f.write(json.dumps(dict(phase="eval", step=2, **ev(2, acc - 0.125))) + "\n")
    runs = load_runs(root)
    text, data = arms_table(runs, ["grpo", "gtpo"], {"grpo": "A", "gtpo": "B"}, "grpo",
                            lambda steps: rl_window_rows(steps, [("accuracy", "acc", 2)]))
    labels = list(data["rows"])
    assert labels == ["acc, early", "acc, late", "held-out greedy_acc after sft",
                      "held-out pass@1 after sft", "held-out pass@4 after sft",
                      "held-out greedy_acc at RL step 2", "held-out pass@1 at RL step 2",
                      "held-out greedy_acc after rl", "held-out pass@1 after rl",
                      "held-out pass@4 after rl"]
    assert data["steps"] == 4 and data["ks"] == [1, 4] and text.startswith("RL steps 4; early")
    assert data["rows"]["held-out greedy_acc at RL step 2"]["ci"]["gtpo"]["mean"] == 0.625
    assert eval_value(runs["grpo"][0], 2, "pass@1") == 0.1875
    assert math.isnan(eval_value(runs["grpo"][0], 3, "pass@1"))


def test_t_interval_matches_the_t_table():
    """rlpt.sweep.report.t_interval against the printed t table: t(0.975, 3) = 3.182,
    t(0.975, 1) = 12.706; one value has no interval."""
    from rlpt.sweep.report import t_interval
    v = [1.0, 2.0, 3.0, 6.0]
    half = 3.182446305284263 * np.std(v, ddof=1) / 2.0
    ci = t_interval(v)
    assert ci["n"] == 4 and ci["mean"] == 3.0
    assert ci["lo"] == pytest.approx(3.0 - half, rel=1e-12)
    assert ci["hi"] == pytest.approx(3.0 + half, rel=1e-12)
    assert t_interval([0.0, 1.0])["hi"] == pytest.approx(0.5 + 12.706204736174694 * 0.5)
    assert t_interval([2.0]) == {"mean": 2.0, "lo": 2.0, "hi": 2.0, "n": 1, "values": [2.0]}

"""experiments.lr_grid on a hand-made grid sweep: each arm's best rate follows the validation
prompts and never the held-out ones, the paired differences at the matched and the best rates
(checked by hand), and the refusals."""
import json
import os

import pytest

from experiments.lr_grid import best_rate, grid_report, grid_seeds, load_grid, plot_grid

ARMS = {"grpo": "algo.name=grpo", "dr_grpo": "algo.name=dr_grpo"}
RATES = (1e-4, 3e-4)
# (arm, lr) -> per seed (validation pass@1, held-out pass@1); held-out favours the rate that
# validation does not for grpo, so a selection that read it would pick the other rate
VALUES = {("grpo", 1e-4): [(0.5, 0.9), (0.6, 0.8)], ("grpo", 3e-4): [(0.7, 0.4), (0.7, 0.5)],
          ("dr_grpo", 1e-4): [(0.6, 0.6), (0.6, 0.7)], ("dr_grpo", 3e-4): [(0.6, 0.2),
                                                                          (0.6, 0.3)]}


def _grid(root, values=VALUES, rates=RATES):
    for (arm, lr), per_seed in values.items():
        if lr not in rates:
            continue
        for seed, (v, h) in enumerate(per_seed):
            d = os.path.join(root, "points", f"{ARMS[arm]},optim.lr={lr},seed={seed}")
            os.makedirs(d)
            json.dump({"algo": {"name": arm}}, open(os.path.join(d, "config.json"), "w"))
            open(os.path.join(d, "metrics.jsonl"), "w").write(
                json.dumps({"phase": "eval", "step": 0, "pass@1": 0.1}) + "\n")
            json.dump({"after_sft": {"pass@1": 0.1}, "after_rl": {"pass@1": h},
                       "validation_after_rl": {"pass@1": v}},
                      open(os.path.join(d, "summary.json"), "w"))
    return load_grid(root)


def test_best_rates_follow_validation_and_differences_are_paired(tmp_path):
    grid = _grid(str(tmp_path))
    assert sorted(grid) == ["dr_grpo", "grpo"] and sorted(grid["grpo"]) == list(RATES)
    assert grid_seeds(grid) == [0, 1]
    assert best_rate(grid["grpo"], "pass@1", [0, 1]) == 3e-4     # validation 0.70 > 0.55
    assert best_rate(grid["dr_grpo"], "pass@1", [0, 1]) == 1e-4  # a tie: the lower rate
    labels = {"grpo": "GRPO", "dr_grpo": "Dr. GRPO"}
    text, data = grid_report(grid, "grpo", "pass@1", ["pass@1"], 1e-4, labels)
    # matched (both at 1e-4): dr_grpo - grpo = (0.6-0.9, 0.7-0.8) -> mean -0.2
    # best (dr_grpo at 1e-4, grpo at 3e-4): (0.6-0.4, 0.7-0.5) -> mean +0.2
    matched = data["diffs"]["dr_grpo-grpo/pass@1/matched"]
    best = data["diffs"]["dr_grpo-grpo/pass@1/best"]
    assert matched["values"] == pytest.approx([-0.3, -0.1])
    assert best["values"] == pytest.approx([0.2, 0.2])
    assert data["best"] == {"grpo": 3e-4, "dr_grpo": 1e-4}
    assert "| GRPO | **0.0003** | 0.700 [0.700, 0.700] | 0.450 [" in text
    assert "| Dr. GRPO - GRPO, both at 0.0001 | Dr. GRPO - GRPO, each at its best |" in text
    plot_grid(data, labels, "pass@1", str(tmp_path / "grid.png"), "test")
    assert os.path.getsize(tmp_path / "grid.png") > 10_000


def test_grid_refusals(tmp_path):
    grid = _grid(str(tmp_path / "a"))
    with pytest.raises(ValueError, match="matched rate 0.001 is not on the grid"):
        grid_report(grid, "grpo", "pass@1", ["pass@1"], 1e-3, {"grpo": "G", "dr_grpo": "D"})
    values = dict(VALUES)
    values[("dr_grpo", 1e-3)] = [(0.1, 0.1), (0.1, 0.1)]
    with pytest.raises(ValueError, match="different rate grids"):
        _grid(str(tmp_path / "b"), values, RATES + (1e-3,))
    d = tmp_path / "c" / "points" / "algo.name=grpo,seed=0"
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("")
    (d / "config.json").write_text(json.dumps({"algo": {"name": "grpo"}}))
    with pytest.raises(ValueError, match="has no optim.lr="):
        load_grid(str(tmp_path / "c"))


def test_a_grid_split_over_sweeps_loads_as_one(tmp_path):
    """One workdir per rate (`--only`), loaded together, equals the one-workdir grid; the same
    (arm, rate) in two of them is an error."""
    one = _grid(str(tmp_path / "one"))
    parts = [str(tmp_path / f"lr{lr}") for lr in RATES]
    for d, lr in zip(parts, RATES):
        _grid(d, rates=(lr,))
    assert load_grid(parts) == one
    with pytest.raises(ValueError, match="in two settings or sweeps"):
        load_grid(parts + [parts[0]])


def test_the_command_line_writes_the_report_with_the_experiments_labels(tmp_path, capsys):
    """`python -m experiments.lr_grid DIRS --experiment dr_grpo_length ...`: the arms labelled by
    that experiment's LABELS, the three files written."""
    from experiments.lr_grid import main
    parts = [str(tmp_path / f"lr{lr}") for lr in RATES]
    for d, lr in zip(parts, RATES):
        _grid(d, rates=(lr,))
    main(parts + ["--experiment", "dr_grpo_length", "--baseline", "grpo", "--matched", "1e-4",
                  "--metrics", "pass@1", "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "lr_grid.md").read_text()
    assert "| Dr. GRPO | **0.0001** |" in text and text in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "out")) == ["lr_grid.json", "lr_grid.md", "lr_grid.png"]


def test_an_archived_grid_regenerates_its_report(tmp_path):
    """A regenerate.json analysis with "script": "lr_grid" runs experiments/lr_grid.py on the
    extracted archives and rebuilds lr_grid.md byte for byte."""
    from experiments.archive import archive_experiment, regenerate
    from experiments.lr_grid import main
    parts = []
    for lr in RATES:
        d = tmp_path / f"lr{lr}"
        _grid(str(d), rates=(lr,))
        (d / "sweep.json").write_text("{}")
        parts.append(str(d))
    exp = tmp_path / "experiments" / "dr_grpo_length"
    argv = ["--experiment", "dr_grpo_length", "--baseline", "grpo", "--matched", "1e-4",
            "--metrics", "pass@1"]
    main(parts + argv + ["--out", str(exp)])
    (exp / "regenerate.json").write_text(json.dumps(
        {"sweeps": {"a": parts[0], "b": parts[1]},
         "analyses": [{"script": "lr_grid", "sweeps": ["a", "b"], "argv": argv}]}))
    archive_experiment("dr_grpo_length", str(exp.parent))
    got = regenerate("dr_grpo_length", str(tmp_path / "out"), str(exp.parent))
    assert got == {"status": "identical", "files": {"lr_grid.md": "identical"}}



@pytest.mark.parametrize("experiment,config", [("dapo_ablation", "dapo_ablation"),
                                               ("kdrl", "kdrl_vs_grpo"),
                                               ("unlikely_passk", "unlikely_passk")])
def test_grid_points_of_every_rate_are_named_by_their_arm(experiment, config):
    """experiments/<name>/analyze.py's grid_arm, for the entries whose arms share an algorithm
    name: the points of one arm get one name at every rate of the grid, different arms
    different names (what experiments/lr_grid.py groups by)."""
    import importlib
    import runpy
    from rlpt.sweep.points import points_to_configs
    mod = importlib.import_module(f"configs.{config}")
    grid_arm = runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                           "experiments", experiment, "analyze.py"))["grid_arm"]
    points = points_to_configs(mod.get_config("quick=1"),
                               mod.get_sweep("lrs=7.5e-5/1.5e-4,seeds=1,quick=1"))
    names = {}
    for p in points:
        base = p.name.rsplit(",seed=", 1)[0]
        without_lr = base.split(",optim.lr=")[0]
        names.setdefault(without_lr, set()).add(grid_arm(base, p.cfg.to_dict()))
    assert all(len(v) == 1 for v in names.values())            # one name per arm, any rate
    assert len({next(iter(v)) for v in names.values()}) == len(names)   # distinct arms


def test_a_grid_of_one_arm_reports_its_rates_and_no_differences(tmp_path):
    grid = _grid(str(tmp_path), {k: v for k, v in VALUES.items() if k[0] == "grpo"})
    text, data = grid_report(grid, "grpo", "pass@1", ["pass@1"], 1e-4, {"grpo": "GRPO"})
    assert data["best"] == {"grpo": 3e-4} and data["diffs"] == {}
    assert text.rstrip().endswith("One arm: no differences between arms; its best rate is 0.0003.")

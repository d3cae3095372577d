"""Every experiments/*/analyze.py, run as its command line on tiny sweep directories of the shape
`python -m rlpt.sweep` writes.

Each experiment's sweeps are made by rlpt.sweep.main.run_sweep from the experiment's own config
(configs/<name>.py: get_config / get_sweep, 3 seeds and 20 RL steps; a follow-up sweep as its
README runs it), so point names, config.json, sweep.json and the group layout are the real ones;
only the training is replaced (`_fake_run_group` stands in for rlpt.sweep.run.run_group): each
point's metrics.jsonl gets SFT, RL and evaluation rows with synthetic values, the evaluation keys
those of rlpt.evaluation.rollout.eval_metrics for the point's config (pass@k for eval.ks, per
difficulty of the task's held-out set, self-correction rates), the RL keys those its algorithm
and the scratchpad reward log; summary.json as run_group writes it.

Checked: each script writes <stem>.md / .json / .png into `--out DIR`, its table holds the
planted held-out greedy accuracy after RL of the baseline arm (fmt_ci of its seeds), and every
panel of its figure has a title and both axis labels; without --out a script writes under
<first sweep>/analysis/ and leaves the experiment's committed files alone; the 95% band that
the plots draw for a bounded metric stays inside the metric's range.
"""
import glob
import json
import os
import runpy
import sys
import types
import zlib

import numpy as np
import pytest

import experiments.analysis as analysis
import rlpt.sweep.main as sweep_main
import rlpt.sweep.report as sweep_report
from experiments.analysis import clipped_band, fmt_ci
from rlpt.build import build_task
from rlpt.io.metrics_log import MetricsLog
from rlpt.io.workdir import write_config, write_json_atomic
from rlpt.sweep.points import points_to_configs
from rlpt.sweep.report import t_interval
from rlpt.sweep.run import point_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS_DIR = os.path.join(REPO, "experiments")   # where the analyze.py scripts are
SMALL = "seeds=3,rl_steps=20"   # every config's arguments, before a case's own
CASES = [  # (experiment, configs/<file>.py, its sweeps' arguments as in the README, more argv,
    #         output stem)
    ("dapo_ablation", "dapo_ablation", [""], [], "results"),
    ("dr_grpo_length", "dr_grpo_length", [""], [], "lengths"),
    ("gspo_gmpo_stability", "gspo_gmpo_stability", [""], [], "stability"),
    ("gspo_gmpo_stability", "gspo_gmpo_stability",   # the pilots: 3 learning rates, 2 seeds
     ["arms=grpo,lrs=1e-4/3e-4/1e-3,seeds=2,seed_start=10"], ["--stem", "pilot"], "pilot"),
    ("gtpo_entropy", "gtpo_entropy", ["", "arms=gtpo/grpo_s,norm=joint"], [], "results"),
    ("hard_split", "hard_split", ["", "arms=uft,hint_steps=100"], [], "results"),
    ("kdrl", "kdrl_vs_grpo", ["", "arms=kdrl_kd1"], [], "results"),
    ("kimi_length", "kimi_length", [""], [], "results"),
    ("kimi_length", "kimi_length", ["algo=kimi_k15", "algo=kimi_k15,arms=grpo_len,start=10"],
     ["--stem", "results_k15_warmup"], "results_k15_warmup"),
    ("mgrpo_selfcorrect", "mgrpo_selfcorrect", [""], [], "results"),
    ("one_shot_rlvr", "one_shot_rlvr", [""], [], "results"),
    ("ppo_vs_grpo", "ppo_vs_grpo", [""], [], "compare"),
    ("unlikely_passk", "unlikely_passk", ["", "epoch_list=2,lr=1.5e-4"],
     ["--stem", "results_lr"], "results_lr"),
    ("yue_passk", "yue_passk", [""], [], "passk"),
    ("smollm2_passk", "smollm2_passk", [""], [], "passk"),
    ("pre_dpo_vs_dpo", "pre_dpo_vs_dpo", [""], [], "results"),
    ("label_noise", "label_noise", ["what=policy"], [], "results"),
    ("label_noise", "label_noise", ["what=rm"], ["--stem", "results_rm"], "results_rm"),
    ("drpo_robustness", "drpo_robustness", ["case=clean", "case=noisy", "case=wrong_ref"], [],
     "results"),
    ("rm_overoptimization", "rm_overoptimization", [""], [], "results"),
    ("tool_when_to_call", "tool_when_to_call", [""], [], "results"),
    ("artist_tool", "artist_tool", [""], [], "results"),
    ("reward_hacking", "reward_hacking", [""], [], "results"),
    ("feedback_rewards", "feedback_rewards", [""], [], "results"),
    ("domain_transfer", "domain_transfer", [""], [], "results"),
    ("online_dpo_vs_grpo", "online_dpo_vs_grpo", ["what=dpo", "what=grpo"], [], "results"),
    ("toolrl_function_call", "toolrl_function_call", [""], [], "results"),
    ("agent_lightning", "agent_lightning", [""], [], "results"),
    ("general_reasoner", "general_reasoner", [""], [], "results"),
    ("mixed_reward", "mixed_reward", [""], [], "results"),
    ("smollm2_one_shot", "smollm2_one_shot", [""], [], "results"),
    ("smollm2_compare", "smollm2_compare", [""], [], "compare"),
    ("smollm2_compare", "smollm2_compare", ["arms=grpo,lrs=1e-5/5e-5,seeds=2,seed_start=10"],
     ["--stem", "pilot"], "pilot"),
]
SMALL_OF = {"pre_dpo_vs_dpo": "seeds=3,steps=20", "label_noise": "seeds=3",   # no rl_steps
            "drpo_robustness": "seeds=3", "rm_overoptimization": "seeds=3,steps=20",
            "tool_when_to_call": "seeds=3,steps=20", "artist_tool": "seeds=3",
            "feedback_rewards": "seeds=3,steps=20", "online_dpo_vs_grpo": "seeds=3,steps=20",
            "smollm2_passk": "seeds=3,steps=20", "agent_lightning": "seeds=3,steps=20",
            "general_reasoner": "seeds=3", "smollm2_one_shot": "seeds=3,steps=20",
            "smollm2_compare": "seeds=3,steps=20"}
ALGO_RL_KEYS = {  # RL-row keys an algorithm logs besides the common ones (rlpt/algorithms/)
    "ppo": ("value_mean", "vf_loss", "vf_clip_frac", "dual_clip_frac"),
    "kdrl": ("kd_beta", "kd_k2", "kd_frac"),
    "mgrpo": ("layer2_accuracy", "layer2_reward_mean", "layer2_tokens", "layer2_wrong_to_right",
              "layer2_right_to_wrong", "layer2_from_wrong_frac"),
    "exp_grpo": ("expl_loglik", "expl_sft_tokens", "expl_len", "rl_loss", "sft_coef"),
    "relift": ("relift_buffer_count", "relift_failed_prompts", "relift_sft_applied",
               "relift_sft_loss"),
    "uft": ("hint_tokens", "hint_prob", "hint_nll"),
}
_levels = {}


def _difficulties(cfg):
    """The difficulty labels of the point's held-out set (rlpt.evaluation.metrics.by_difficulty
    logs keys per label), or () for a task without them."""
    key = cfg.task.to_json_best_effort(sort_keys=True) + str(cfg.eval.n_prompts)
    if key not in _levels:
        batch = build_task(cfg).eval_set(cfg.eval.n_prompts)
        _levels[key] = (sorted({int(v) for v in np.asarray(batch["difficulty"])})
                        if "difficulty" in batch else [])
    return _levels[key]


def _eval_row(cfg, step, effect, seed):
    """The keys of rlpt.evaluation.rollout.eval_metrics for `cfg`; after SFT (step 0) a function
    of the seed only: the arms of a seed share their SFT model."""
    frac = step / cfg.rl.steps
    g = float(np.clip(0.42 + 0.05 * seed + (0.1 + effect) * frac, 0.0, 1.0))
    p1 = 0.9 * g
    row = {"greedy_acc": g}
    for k in cfg.eval.ks:
        row[f"pass@{k}"] = 1.0 - (1.0 - p1) ** (k ** (1.0 - 0.3 * frac))
    kmax = max(cfg.eval.ks)
    for d in _difficulties(cfg):
        gd = max(0.0, g - 0.15 * (d - 1))
        row[f"greedy_acc_d{d}"] = gd
        for k in sorted({1, kmax}):
            row[f"pass@{k}_d{d}"] = 1.0 - (1.0 - 0.9 * gd) ** k
    if cfg.rollout.get("kind") == "tool":   # rlpt.envs.tool_rollout.evaluate_tool's call rates
        for d in [""] + [f"_d{d}" for d in _difficulties(cfg)]:
            row[f"call_rate{d}"] = row[f"greedy_call_rate{d}"] = 0.5 + 0.4 * frac
    if cfg.eval.get("calibration"):   # rlpt.evaluation.metrics.calibration
        row.update(ece=0.2 - 0.1 * frac, confidence=0.6 + 0.2 * frac,
                   confidence_auc=0.4 + 0.2 * frac)
    for k in cfg.eval.get("greedy_aux", ()):   # the reward's aux over the greedy answers
        row[f"greedy_{k}"] = 0.4 * (1.0 - frac)
    if cfg.eval.get("self_correction"):
        row.update(sc_wrong_to_right=0.02 + 0.1 * effect * frac, sc_right_to_wrong=0.9 - frac / 2,
                   sc_acc_after=0.05 + 0.2 * frac)
    return row


def _rl_row(cfg, step, effect, rng):
    acc = float(np.clip(0.35 + 0.3 * step / cfg.rl.steps + effect + rng.normal(0, 0.05), 0, 1))
    length = 20.0 + 5 * rng.random()
    row = {"loss": rng.normal(), "pg_loss": rng.normal(), "reward_mean": acc, "reward_std": 0.3,
           "accuracy": acc, "entropy_sampled": 0.5 + effect, "response_len": length,
           "response_len_max": 48.0, "stopped_frac": 0.95, "zero_adv_group_frac": 0.4 - acc / 4,
           "clip_frac": 0.001 * (1 + effect), "ratio_mean": 1.0, "grad_norm": 1.0 + rng.random(),
           "reward_format_ok": 0.9, "reward_response_len": length}
    for which, has, extra in (("correct", acc > 0, 0.0), ("wrong", acc < 1, 2.0)):
        # the scratchpad reward logs 0 when the step has no correct (wrong) response
        row[f"reward_response_len_{which}"] = length + extra if has else 0.0
        row[f"reward_excess_len_{which}"] = rng.normal(extra, 1.0) if has else 0.0
    if cfg.reward.kind == "reward_model":   # rlpt.preference.reward_model's aux
        row.update(reward_rm_score=rng.normal(acc, 0.1), reward_true_reward=acc,
                   reward_correct=acc)
    if cfg.rollout.get("kind") == "tool":   # rlpt.envs.tool_rollout.tool_metrics
        row.update(call_rate=0.5 + acc / 2, calls_per_sample=0.5 + acc / 2)
    for i, key in enumerate(ALGO_RL_KEYS.get(cfg.algo.name, ())):
        row[key] = float(rng.random()) if i % 2 else 0.1 * (1 + effect)
    return row


def _fake_run_group(group, sweep_dir, bar, devices=None, sft_from=()):
    """rlpt.sweep.run.run_group's files for the group's points, synthetic numbers."""
    summaries = []
    for p in group.points:
        cfg, wd = p.cfg, point_dir(sweep_dir, p)
        os.makedirs(wd, exist_ok=True)
        write_config(wd, cfg)
        effect = (zlib.crc32(json.dumps(p.setting, sort_keys=True).encode()) % 8) / 100
        rng = np.random.default_rng(zlib.crc32(p.name.encode()))
        rows = [dict(phase="sft", step=s, loss=2.0 / s) for s in range(1, cfg.sft.steps + 1)]
        rows.append(dict(phase="eval", step=0, **_eval_row(cfg, 0, effect, p.seed)))
        for step in range(1, cfg.rl.steps + 1):
            rows.append(dict(phase="rl", step=step, **_rl_row(cfg, step, effect, rng)))
            if step % cfg.eval.every == 0 or step == cfg.rl.steps:
                rows.append(dict(phase="eval", step=step,
                                 **_eval_row(cfg, step, effect, p.seed)))
        MetricsLog(os.path.join(wd, "metrics.jsonl")).write(rows)
        evals = [r for r in rows if r["phase"] == "eval"]
        summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
                   "sft_steps": cfg.sft.steps, "group": group.index,
                   "runs_in_program": len(group.points), "sft_seconds_group": 60.0,
                   "rl_seconds_group_this_session": 120.0}
        write_json_atomic(os.path.join(wd, "summary.json"), summary)
        summaries.append(summary)
    return summaries


def _fake_run_alone(p, sweep_dir, sft_from=()):
    """rlpt.preference.train.run's files for a preference point (policy or reward-model mode),
    synthetic numbers: SFT rows, evaluation rows every eval.every steps and summary.json; a
    policy-gradient point alone (the tool rollout) as `_fake_run_group` writes it."""
    if "mode" not in p.cfg:
        _fake_run_group(types.SimpleNamespace(points=[p], index=0), sweep_dir, None)
        return
    cfg, wd = p.cfg, point_dir(sweep_dir, p)
    os.makedirs(wd, exist_ok=True)
    write_config(wd, cfg)
    effect = (zlib.crc32(json.dumps(p.setting, sort_keys=True).encode()) % 8) / 100
    policy = cfg.mode == "policy"
    steps = cfg.pref.steps if policy else cfg.rm.steps
    phase = "pref" if policy else "rm"

    def row(step):
        g = float(np.clip(0.6 + 0.03 * p.seed + (0.1 + effect) * step / steps, 0, 1))
        if not policy:
            return {"rm_acc": g, "rm_acc_same_len": g - 0.1, "same_len_pairs": 100.0}
        out = {"greedy_acc": g, **{f"pass@{k}": 1 - (1 - 0.9 * g) ** k for k in cfg.eval.ks}}
        return dict(out, pair_acc=g, pair_loss=0.5, policy_pair_acc=g - 0.05)
    rows = [dict(phase="sft", step=s, loss=2.0 / s) for s in range(1, cfg.sft.steps + 1)]
    evals = [dict(phase=f"{phase}_eval", step=st, **row(st))
             for st in sorted({0, steps, *range(0, steps, cfg.eval.every)})]
    for st in range(1, steps + 1):
        rows.append(dict(phase=phase, step=st, loss=1.0 / st))
        rows += [e for e in evals if e["step"] == st]
    MetricsLog(os.path.join(wd, "metrics.jsonl")).write(rows[:cfg.sft.steps] + evals[:1]
                                                        + rows[cfg.sft.steps:])
    strip = lambda r: {k: v for k, v in r.items() if k != "phase"}
    write_json_atomic(os.path.join(wd, "summary.json"), {
        "mode": cfg.mode, "algo": cfg.algo.name, "initial": strip(evals[0]),
        "final": strip(evals[-1]), "sft_steps": cfg.sft.steps})


@pytest.fixture
def make_sweep(monkeypatch, tmp_path):
    """`make_sweep(config, arg) -> workdir`: rlpt.sweep.main.run_sweep of configs/<config>.py
    with the training faked (module doc); the teacher file of configs/kdrl_vs_grpo.py is not
    checked, the sweep's own curves.png not drawn."""
    monkeypatch.setattr(sweep_main, "run_group", _fake_run_group)
    monkeypatch.setattr(sweep_main, "_run_alone", _fake_run_alone)
    monkeypatch.setattr(sweep_main, "check_files", lambda cfg: None)
    monkeypatch.setattr(sweep_report, "plot", lambda *args, **kwargs: None, raising=False)
    monkeypatch.setenv("RLPT_NO_PROGRESS", "1")

    def make(config, arg):
        small = SMALL_OF.get(config, SMALL)
        spec = f"{os.path.join(REPO, 'configs', config + '.py')}:{small}" + (f",{arg}" if arg
                                                                            else "")
        base, points = sweep_main.load_sweep(spec)
        workdir = str(tmp_path / f"{config}_{len(os.listdir(tmp_path))}")
        sweep_main.run_sweep(base, points, workdir, progress=False)
        names = sorted(os.listdir(os.path.join(workdir, "points")))
        assert names == sorted(p.name for p in points_to_configs(base, points))
        return workdir
    return make


def _run_script(name, argv, monkeypatch, experiments_dir=None):
    """experiments/<name>/analyze.py as `python analyze.py ARGV`; -> the figures it saved."""
    saved, save = [], analysis.save_figure

    def record(fig, title, path):
        save(fig, title, path)
        saved.append(fig)
    monkeypatch.setattr(analysis, "save_figure", record)
    script = os.path.join(experiments_dir or EXPERIMENTS_DIR, name, "analyze.py")
    monkeypatch.setattr(sys, "argv", [script] + argv)
    runpy.run_path(script, run_name="__main__")
    return saved


def _check_figure(fig):
    """A title over the figure; on every panel with data a title and both axis labels."""
    import matplotlib.pyplot as plt
    assert fig._suptitle is not None and fig._suptitle.get_text()
    for ax in fig.axes:
        if not ax.get_visible() or not ax.has_data():
            continue
        assert ax.get_title(), "a panel without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), f"panel {ax.get_title()!r}: unlabelled axis"
    plt.close(fig)


def test_every_analysis_has_a_case():
    have = {os.path.basename(os.path.dirname(p))
            for p in glob.glob(os.path.join(REPO, "experiments", "*", "analyze.py"))}
    assert have == {case[0] for case in CASES}


@pytest.mark.parametrize("name,config,args,argv,stem", CASES,
                         ids=[f"{c[0]}-{c[4]}" for c in CASES])
def test_analysis_writes_its_outputs(name, config, args, argv, stem, make_sweep, monkeypatch,
                                     tmp_path, capsys):
    sweeps = [make_sweep(config, a) for a in args]
    out = tmp_path / "out"
    figures = _run_script(name, sweeps + argv + ["--out", str(out)], monkeypatch)
    assert sorted(os.listdir(out)) == [f"{stem}.json", f"{stem}.md", f"{stem}.png"]
    assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.loads((out / f"{stem}.json").read_text())
    text = (out / f"{stem}.md").read_text()
    assert text in capsys.readouterr().out
    # the baseline arm: the first setting of the first sweep (every config lists it first)
    first = json.load(open(os.path.join(sweeps[0], "sweep.json")))
    baseline = first["settings"][0]["points"]
    final = [sweep_report.stage(p["summary"], "after_rl") for p in first["points"]
             if p["name"] in baseline]
    planted = [f["greedy_acc"] if "greedy_acc" in f else f["rm_acc"] for f in final]
    assert len(planted) >= 2 and fmt_ci(t_interval(planted)) in text
    assert len(figures) == 1
    _check_figure(figures[0])


def test_without_out_the_outputs_go_under_the_sweep(make_sweep, monkeypatch, tmp_path):
    """The default output directory is <first sweep>/analysis/, created; nothing is written
    beside the script (a copy here: the experiment's directory holds committed results)."""
    sweep = make_sweep("yue_passk", "")
    script_dir = tmp_path / "experiments" / "yue_passk"
    script_dir.mkdir(parents=True)
    with open(os.path.join(EXPERIMENTS_DIR, "yue_passk", "analyze.py")) as f:
        (script_dir / "analyze.py").write_text(f.read())
    for fig in _run_script("yue_passk", [sweep], monkeypatch, str(tmp_path / "experiments")):
        _check_figure(fig)
    assert os.listdir(script_dir) == ["analyze.py"]
    assert sorted(os.listdir(os.path.join(sweep, "analysis"))) == [
        "passk.json", "passk.md", "passk.png"]


def test_kimi_collapse_steps_are_the_first_steps_past_each_threshold():
    """experiments/kimi_length/analyze.py's collapse table: per seed the first RL step with mean
    length below 2, with every response empty (length 1) and with train accuracy 0."""
    kimi = runpy.run_path(os.path.join(EXPERIMENTS_DIR, "kimi_length", "analyze.py"))
    cfg = {"algo": {"name": "grpo"}}

    def run(lengths, accs):
        return {"cfg": cfg, "rl": [{"step": i + 1, "response_len": n, "accuracy": a}
                                   for i, (n, a) in enumerate(zip(lengths, accs))]}
    runs = {"none": {0: run([9, 9, 9, 9, 9], [.5] * 5), 1: run([9] * 5, [.5] * 5)},
            "kimi_length_penalty": {0: run([9, 3, 1.5, 1.0, 1.0], [.5, .2, 0, 0, 0]),
                                    1: run([9, 1.9, 2.5, 1.2, 1.0], [.5, .5, .1, .1, 0])}}
    text, data = kimi["collapse_table"](runs)
    assert data["kimi_length_penalty"] == {"length < 2": {"0": 3, "1": 2},
                                           "all responses empty": {"0": 4, "1": 5},
                                           "train accuracy 0": {"0": 3, "1": 5}}
    assert data["none"]["length < 2"] == {"0": None, "1": None}
    assert "| GRPO + length reward | all responses empty | 4 | 5 |" in text
    assert "| GRPO | length < 2 | - | - |" in text


def test_a_band_near_the_end_of_the_range_stays_inside_it():
    """Three seeds near 1 (or 0): the t-interval leaves [0, 1]; the drawn band does not."""
    high, low = t_interval([0.97, 1.0, 0.99]), t_interval([0.0, 0.04, 0.01])
    assert high["hi"] > 1.0 and low["lo"] < 0.0   # what an unclipped band would draw
    lo, hi = clipped_band([high, low])
    assert np.all((lo >= 0.0) & (hi <= 1.0)) and hi[0] == 1.0 and lo[1] == 0.0
    assert lo[0] == pytest.approx(high["lo"]) and hi[1] == pytest.approx(low["hi"])
    diff = t_interval([-0.99, -0.9, -1.0])   # a difference of two fractions: [-1, 1]
    lo, hi = clipped_band([diff], analysis.DIFFERENCE)
    assert diff["lo"] < -1.0 and lo[0] == -1.0 and hi[0] == pytest.approx(diff["hi"])
    lo, hi = clipped_band([diff], None)   # an unbounded metric (a length, a loss): as is
    assert lo[0] == diff["lo"]


# ------------------------------------------------------------------ archives (experiments/archive.py)

def regenerate_main(argv):
    """scripts/regenerate_experiments.py's main(argv) -> (identical, experiments)."""
    return runpy.run_path(os.path.join(REPO, "scripts", "regenerate_experiments.py"))["main"](argv)


def test_an_archived_sweep_regenerates_its_tables_identically(make_sweep, tmp_path, capsys):
    """Two sweeps archived, then deleted: scripts/regenerate_experiments.py rebuilds the
    analysis table and both sweep tables (`"table": [first, second]`: table.md and
    table_<second>.md) byte for byte from the archives; a committed table that no longer
    matches is reported; the archive's bytes depend only on the runs."""
    import shutil
    import subprocess
    from experiments.archive import archive_experiment
    sweep, second = make_sweep("yue_passk", ""), make_sweep("yue_passk", "seeds=2")
    exp = tmp_path / "experiments" / "yue_passk"
    exp.mkdir(parents=True)
    shutil.copy(os.path.join(EXPERIMENTS_DIR, "yue_passk", "analyze.py"), exp)
    # the "committed" results, made from the sweep itself as an experiment's README does
    subprocess.run([sys.executable, str(exp / "analyze.py"), sweep, "--out", str(exp)],
                   check=True, cwd=REPO, capture_output=True, env=dict(os.environ, PYTHONPATH=REPO))
    shutil.copy(os.path.join(sweep, "table.md"), exp)
    shutil.copy(os.path.join(second, "table.md"), exp / "table_two.md")
    assert (exp / "table.md").read_text() != (exp / "table_two.md").read_text()
    (exp / "regenerate.json").write_text(json.dumps(
        {"sweeps": {"main": sweep, "two": second},
         "analyses": [{"sweeps": ["main"], "argv": []}], "table": ["main", "two"]}))
    paths = archive_experiment("yue_passk", str(exp.parent))
    first = [open(p, "rb").read() for p in paths]
    assert archive_experiment("yue_passk", str(exp.parent)) == paths
    assert [open(p, "rb").read() for p in paths] == first
    shutil.rmtree(sweep)
    shutil.rmtree(second)

    args = ["--experiments", str(exp.parent)]
    assert regenerate_main(["--out", str(tmp_path / "a")] + args) == (1, 1)
    out = capsys.readouterr().out
    assert ("yue_passk: identical (passk.md identical, table.md identical, table_two.md "
            "identical)") in out
    assert out.rstrip().endswith("1 of 1 experiments regenerate identically")
    assert (tmp_path / "a" / "yue_passk" / "passk.png").exists()   # (make_sweep stubs curves.png)

    (exp / "table.md").write_text((exp / "table.md").read_text().replace("0.", "1.", 1))
    assert regenerate_main(["--out", str(tmp_path / "b"), "--tables_only"] + args) == (0, 1)
    assert ("yue_passk: differs (passk.md identical, table.md differs, table_two.md identical)"
            in capsys.readouterr().out)
    assert not list((tmp_path / "b" / "yue_passk").glob("*.png"))


def test_a_single_run_archives_as_one_point(tmp_path):
    """An rlpt.train workdir (e.g. the KDRL teacher) archives as one point named after it and
    extracts to points/<name>/ with the same files; a directory with neither points/ nor a
    summary is refused."""
    from experiments.archive import extract_archive, write_archive
    run = tmp_path / "kdrl_teacher"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"seed": 0}))
    (run / "summary.json").write_text(json.dumps({"after_rl": {"greedy_acc": 0.99}}))
    rows = [{"phase": "eval", "step": 0, "greedy_acc": 0.5}, {"phase": "rl", "step": 1}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert write_archive(str(run), str(tmp_path / "teacher.jsonl.gz")) == 1
    sweep = extract_archive(str(tmp_path / "teacher.jsonl.gz"), str(tmp_path / "x"))
    assert sweep == {"single_run": True}
    got = tmp_path / "x" / "points" / "kdrl_teacher"
    assert json.loads((got / "summary.json").read_text())["after_rl"]["greedy_acc"] == 0.99
    assert [json.loads(x) for x in (got / "metrics.jsonl").read_text().splitlines()] == rows
    with pytest.raises(FileNotFoundError, match="no points/\\* and no summary.json"):
        write_archive(str(tmp_path / "x" / "points"), str(tmp_path / "y.jsonl.gz"))


def test_a_stopped_sweep_archives_its_finished_points(tmp_path):
    """A sweep stopped between points (no sweep.json, e.g. the SmolLM2 compare pilot) archives
    with the sweep line {"stopped": true} when every point in it finished; an unfinished point
    (no summary.json) is refused."""
    from experiments.archive import extract_archive, write_archive
    for name in ("lr=1,seed=0", "lr=2,seed=0"):
        d = tmp_path / "sweep" / "points" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"seed": 0}))
        (d / "summary.json").write_text(json.dumps({"after_rl": {"greedy_acc": 0.5}}))
        (d / "metrics.jsonl").write_text(json.dumps({"phase": "eval", "step": 0}) + "\n")
    assert write_archive(str(tmp_path / "sweep"), str(tmp_path / "a.jsonl.gz")) == 2
    assert extract_archive(str(tmp_path / "a.jsonl.gz"), str(tmp_path / "x")) == {"stopped": True}
    (tmp_path / "sweep" / "points" / "lr=2,seed=0" / "summary.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no sweep.json and unfinished points \['lr=2"):
        write_archive(str(tmp_path / "sweep"), str(tmp_path / "b.jsonl.gz"))


def test_every_committed_archive_regenerates_identically(tmp_path, capsys):
    """The repository's own archives: every experiment that has one regenerates identically;
    the others are counted as not regenerating. Tables only: the plots are never compared, and
    test_an_archived_sweep_regenerates_its_tables_identically draws an analysis's plot."""
    from experiments.archive import manifest
    names = {os.path.basename(os.path.dirname(p))
             for p in glob.glob(os.path.join(EXPERIMENTS_DIR, "*", "analyze.py"))}
    archived = {n for n in names if manifest(n) is not None}
    same, total = regenerate_main(["--out", str(tmp_path), "--tables_only"])
    assert not glob.glob(os.path.join(str(tmp_path), "*", "*.png"))
    assert total == len(names) and same == len(archived), capsys.readouterr().out


def test_gtpo_one_group_demonstration_is_the_committed_output():
    """experiments/gtpo_entropy/one_group.txt (quoted in its README) is what one_group.py
    prints: the separate z-score leaves successes and failures each at mean advantage 0, the
    joint one keeps them apart."""
    from experiments.gtpo_entropy.one_group import one_group_lines
    d = os.path.join(os.path.dirname(analysis.__file__), "gtpo_entropy")
    lines = one_group_lines()
    assert open(os.path.join(d, "one_group.txt")).read() == "\n".join(lines) + "\n"
    assert all(line in open(os.path.join(d, "README.md")).read() for line in lines)
    assert "success tokens 0.000, failure tokens 0.000" in lines[0]

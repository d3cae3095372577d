"""Reading a finished sweep for an experiment's own analysis (experiments/*/analyze.py): the runs
by arm and seed, window means of logged metrics, intervals over seeds, smoothed curves.

A sweep directory holds `points/<name>/` per point (rlpt.sweep.run): `metrics.jsonl` (rows with
`phase` sft | rl | eval and `step`), `summary.json` (held-out evaluation after SFT and after RL)
and `config.json`. A point's arm is read from its name (by default the `algo.name=...` override;
a sweep without one has the single arm "all") and its seed from `seed=N`.
"""
import argparse
import glob
import json
import os
import re
import warnings
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from rlpt.sweep.report import INTERVAL, STAGE_ALIASES, t_interval

ARM_PATTERN = r"algo\.name=([A-Za-z0-9_]+)"
# a run's training rows ("rl") and evaluation rows ("eval"): an RL run's, or those of the main
# phase of a preference run (rlpt.preference.train: "pref" / "pref_eval", also when a reward
# model trained first in the run, as DRPO's) or of a reward-model run ("rm" / "rm_eval")
TRAIN_PHASES = ("rl", "pref", "rm")
REFERENCE_KEYS = ("pair_acc", "pair_loss")
EVAL_PHASES = ("eval", "pref_eval", "rm_eval")


def load_runs(sweep_dir: str, arm_pattern: str = ARM_PATTERN) -> Dict[str, Dict[int, Dict]]:
    """{arm: {seed: run}}, run = {"rl": rows, "eval": rows (TRAIN_PHASES / EVAL_PHASES),
    "summary": dict or None, "cfg": dict or None}, from every point directory of `sweep_dir`."""
    runs: Dict[str, Dict[int, Dict]] = {}
    paths = sorted(glob.glob(os.path.join(sweep_dir, "points", "*")))
    if not paths:
        raise FileNotFoundError(f"{sweep_dir}: no points/* directories (not a finished sweep?)")
    for d in paths:
        name = os.path.basename(d)
        arm = re.search(arm_pattern, name)
        seed = re.search(r"seed=(\d+)", name)
        if seed is None:
            raise ValueError(f"{d}: the point name has no seed=N")
        rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
        phases = {r["phase"] for r in rows}
        main = next((i for i, p in enumerate(EVAL_PHASES) if p in phases), 0)
        run = {"rl": [r for r in rows if r["phase"] == TRAIN_PHASES[main]],
               "eval": [r for r in rows if r["phase"] == EVAL_PHASES[main]]}
        for key in ("summary", "config"):
            path = os.path.join(d, f"{key}.json")
            run["cfg" if key == "config" else key] = (json.load(open(path))
                                                      if os.path.exists(path) else None)
        runs.setdefault(arm.group(1) if arm else "all", {})[int(seed.group(1))] = run
    return runs


def load_arms(sweep_dir: str, arm_of: Callable, known=None) -> Dict:
    """Runs by `arm_of(overrides, cfg)`: `overrides` is a point's name without its seed, `cfg`
    the config of its first run; an arm outside `known` (when given) or two settings mapping to
    one arm is an error."""
    runs: Dict = {}
    for overrides, by_seed in load_runs(sweep_dir, arm_pattern=r"^(.*),seed=\d+$").items():
        arm = arm_of(overrides, next(iter(by_seed.values()))["cfg"])
        if known is not None and arm not in known:
            raise ValueError(f"{sweep_dir}: points of an unknown arm {arm!r} ({overrides}); "
                             f"known: {list(known)}")
        if arm in runs:
            raise ValueError(f"{sweep_dir}: two settings of arm {arm!r} ({overrides})")
        runs[arm] = by_seed
    return runs


def early_late(steps: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """The early window (the first 10% of `steps` RL steps) and the late one (the last 25%)."""
    return (1, max(1, steps // 10)), (steps - steps // 4 + 1, steps)


def window_mean(rows, key: str, lo: int, hi: int, keep=None) -> float:
    """Mean of rl_value(row, key) over the rows with lo <= step <= hi that have a value (and
    pass `keep(row)`); nan when none does."""
    vals = [rl_value(r, key) for r in rows if lo <= r["step"] <= hi and (keep is None or keep(r))]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def fmt_ci(ci: Dict, digits: int = 3) -> str:
    """`mean [lo, hi]` of a t_interval, or `mean (n=1)`."""
    if ci["n"] < 2:
        return f"{ci['mean']:.{digits}f} (n=1)"
    return f"{ci['mean']:.{digits}f} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"


def paired(values: Dict[str, list], arm: str, baseline: str) -> Dict:
    """t_interval of the per-seed difference values[arm] - values[baseline] (same seed order)."""
    return t_interval([a - b for a, b in zip(values[arm], values[baseline])])


def pass_ks(row: Dict) -> list:
    """The k of every `pass@k` key of an evaluation row, ascending."""
    return sorted(int(m.group(1)) for key in row for m in [re.fullmatch(r"pass@(\d+)", key)] if m)


def smooth(x, k: int = 5) -> np.ndarray:
    """Trailing moving average over the last k finite values (nan where there is none)."""
    x = np.asarray(x, float)
    out = np.full_like(x, np.nan)
    for i in range(len(x)):
        w = x[max(0, i - k + 1): i + 1]
        w = w[np.isfinite(w)]
        out[i] = w.mean() if len(w) else np.nan
    return out


SEED_CURVES_TITLE = ("Scratchpad addition, tiny model: thin = seeds (moving average of 5 logged "
                     "steps), thick = mean")


def save_figure(fig, title: str, path: str) -> None:
    """The experiments' figure footer: a title over the panels, tight layout, 70 dpi PNG."""
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=70)


FRACTION = (0.0, 1.0)          # the range of an accuracy, pass@k or rate
DIFFERENCE = (-1.0, 1.0)       # the range of a difference of two of them
BAND = "95% t-band over seeds"   # a band's name in a plot: "(BAND, clipped to [0, 1])"


def clipped_band(cis, bounds=FRACTION) -> Tuple[np.ndarray, np.ndarray]:
    """The (lo, hi) arrays of t_intervals `cis` to draw as a band, clipped to `bounds` (the
    metric's range: FRACTION for accuracies, pass@k and rates, DIFFERENCE for a difference of
    two; None = unbounded): a t-interval over a few seeds of a value near 0 or 1 can leave the
    range the value lives in, and the part outside it is no possible value."""
    lo = np.array([c["lo"] for c in cis], float)
    hi = np.array([c["hi"] for c in cis], float)
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    return lo, hi


def fill_band(ax, x, cis, bounds=FRACTION, **kw) -> None:
    """ax.fill_between of clipped_band(cis, bounds) (nothing for intervals of one seed)."""
    if cis and all(c["n"] > 1 for c in cis):
        ax.fill_between(x, *clipped_band(cis, bounds), **kw)


AXIS_LABELS = {  # y-axis label (with its unit) of an RL-row metric's curve
    "accuracy": "accuracy (fraction)",
    "layer2_accuracy": "accuracy (fraction)",
    "layer2_wrong_to_right": "rate (fraction)",
    "layer2_right_to_wrong": "rate (fraction)",
    "entropy_sampled": "entropy (nats per token)",
    "response_len": "tokens",
    "reward_response_len_correct": "tokens",
    "reward_response_len_wrong": "tokens",
    "reward_excess_len_correct": "tokens beyond the worked solution",
    "reward_excess_len_wrong": "tokens beyond the worked solution",
    "clip_frac": "fraction of tokens",
    "zero_adv_group_frac": "fraction of groups",
    "stopped_frac": "fraction of responses",
    "kd_k2": "k2 per token",
    "kd_frac": "fraction of tokens",
}


def axis_label(key: str) -> str:
    """The y-axis label of the curve of RL-row metric `key` (AXIS_LABELS, else the key)."""
    return AXIS_LABELS.get(key, key)


def summary_value(run: Dict, which: str, key: str) -> float:
    """run["summary"][which][key] ("after_sft" | "after_rl"; a preference run's "initial" |
    "final" for them), nan for an unfinished point."""
    s: Optional[Dict] = run.get("summary")
    if s and which not in s and which in STAGE_ALIASES:
        which = STAGE_ALIASES[which]
    return float(s[which][key]) if s and key in s.get(which, {}) else float("nan")


def merge_runs(parts) -> Dict[str, Dict[int, Dict]]:
    """One {arm: {seed: run}} from several sweeps' (a follow-up sweep started from another's SFT
    models with `--sft_from`): an (arm, seed) in two of them is an error. Warns when arms of a
    seed with the same warm-up and evaluation (_evaluated_warm_up) were evaluated differently
    after SFT: then they did not share their SFT model and a paired difference between them is
    not paired."""
    runs: Dict[str, Dict[int, Dict]] = {}
    for part in parts:
        for arm, by_seed in part.items():
            for seed, run in by_seed.items():
                if seed in runs.get(arm, {}):
                    raise ValueError(f"arm {arm!r} seed {seed} is in two of the sweeps")
                runs.setdefault(arm, {})[seed] = run
    for seed in sorted({s for by_seed in runs.values() for s in by_seed}):
        # reference-dependent keys (a preference run's implicit-reward pair metrics: Pre-DPO's
        # reference is its guide) differ between arms that share their SFT model
        own = lambda rows: [{k: v for k, v in r.items() if k not in REFERENCE_KEYS}
                            for r in rows[:1]]
        after_sft: Dict[str, Dict[str, str]] = {}
        for arm in runs:
            if seed in runs[arm] and runs[arm][seed]["eval"]:
                run = runs[arm][seed]
                after_sft.setdefault(_evaluated_warm_up(run), {})[arm] = json.dumps(
                    own(run["eval"]), sort_keys=True)
        for same in after_sft.values():
            if len(set(same.values())) > 1:
                warnings.warn(f"seed {seed}: the arms' evaluations after SFT differ "
                              f"({sorted(same)}): they do not share their SFT model")
    return runs


def _evaluated_warm_up(run: Dict) -> str:
    """What a run's evaluation after SFT depends on besides the seed: its warm-up
    (rlpt.sweep.sft_cache.sft_key: model, SFT data and settings) and how it is evaluated (the
    rollout section). Arms that differ here (another problem size, the calculator present or
    not) need not agree after SFT; arms that agree here must."""
    import ml_collections
    from rlpt.sweep.sft_cache import sft_key
    cfg = run.get("cfg")
    if not cfg:
        return ""
    return sft_key(ml_collections.ConfigDict(cfg)) + json.dumps(cfg.get("rollout"),
                                                                sort_keys=True)


def default_out(sweep_dirs) -> str:
    """Where an analysis writes without `--out`: `<first sweep_dir>/analysis/`, beside the runs
    it reads, never an experiment's directory (whose tables and plots are committed results)."""
    return os.path.join(sweep_dirs[0], "analysis")


def analysis_main(script_file: str, stem: str, analyze: Callable, plot: Callable,
                  load: Callable = load_runs, argv=None) -> None:
    """The command line of an experiment's analyze.py (`script_file`): `analyze.py SWEEP_DIR
    [MORE_DIRS] [--out DIR] [--stem NAME] [--no_plots]` (DIR defaults to default_out:
    SWEEP_DIR/analysis/, created; NAME to `stem`). Prints `analyze(runs)`'s text, runs = `load(SWEEP_DIR)` merged with
    the follow-up sweeps' (merge_runs), and writes it to `<NAME>.md`, its data to `<NAME>.json`
    and `plot(runs, data, <NAME>.png)` (not with --no_plots)."""
    experiment = os.path.basename(os.path.dirname(os.path.abspath(script_file)))
    ap = argparse.ArgumentParser(description=f"{experiment}: writes {stem}.md, {stem}.json and "
                                 f"{stem}.png")
    ap.add_argument("sweep_dirs", nargs="+", metavar="sweep_dir",
                    help="a sweep's workdir, then follow-up sweeps started from its SFT models")
    ap.add_argument("--out", help="the output directory (created); default: "
                    "<first sweep_dir>/analysis. The experiment's own directory holds the "
                    "committed results: name it only to replace them")
    ap.add_argument("--stem", default=stem, help="the output files' name")
    ap.add_argument("--no_plots", action="store_true", help="the table and its data only")
    a = ap.parse_args(argv)
    stem, out = a.stem, a.out or default_out(a.sweep_dirs)
    runs = merge_runs([load(d) for d in a.sweep_dirs])
    text, data = analyze(runs)
    print(text)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(data, f, indent=1)
    if a.no_plots:
        print(f"wrote {out}/{stem}.md, {stem}.json")
        return
    plot(runs, data, os.path.join(out, f"{stem}.png"))
    print(f"wrote {out}/{stem}.md, {stem}.json, {stem}.png")


def common_seeds(runs: Dict, arms) -> list:
    """The seeds every arm has, ascending."""
    return sorted(set.intersection(*[set(runs[a]) for a in arms]))


def last_rl_step(runs: Dict, arms) -> int:
    return max(r["rl"][-1]["step"] for a in arms for r in runs[a].values() if r["rl"])


def comparison_table(runs: Dict, arms, labels: Dict[str, str], rows, baseline: str,
                     note: str) -> Tuple[str, Dict]:
    """A markdown table with a row per `(label, value_of(run) -> float, digits)` of `rows`, a
    column per arm (mean and 95% t-interval over the seeds every arm has) and one per arm other
    than `baseline` for the per-seed difference arm - baseline (the arms of a seed start from the
    same SFT model); `note` opens it. -> (text, {"seeds", "rows": {label: {"per_seed", "ci",
    "diff_vs_<baseline>"}}})."""
    seeds = common_seeds(runs, arms)
    others = [a for a in arms if a != baseline]
    head = (["metric"] + [labels[a] for a in arms]
            + [f"{labels[a]} - {labels[baseline]}" for a in others])
    lines = [f"{note}seeds {seeds}; {INTERVAL}; differences paired by seed.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    data = {"seeds": seeds, "rows": {}}
    for label, value_of, digits in rows:
        v = {a: [value_of(runs[a][s]) for s in seeds] for a in arms}
        cis = {a: t_interval(v[a]) for a in arms}
        diffs = {a: paired(v, a, baseline) for a in others}
        data["rows"][label] = {"per_seed": v, "ci": cis, f"diff_vs_{baseline}": diffs}
        lines.append("| " + " | ".join([label] + [fmt_ci(cis[a], digits) for a in arms]
                                       + [fmt_ci(diffs[a], digits) for a in others]) + " |")
    return "\n".join(lines) + "\n", data


def plot_seed_curves(ax, runs: Dict, arms, seeds, value_of: Callable, labels: Dict[str, str],
                     colors: Dict[str, str], title: str, ylabel: str) -> None:
    """One panel: per arm, each seed's RL curve of `value_of(row)` (nan = no value; smoothed,
    thin) and their mean (thick); y axis `ylabel`, x axis the RL step."""
    for a in arms:
        curves = []
        for s in seeds:
            rl = runs[a][s]["rl"]
            steps, y = [r["step"] for r in rl], smooth([value_of(r) for r in rl])
            ax.plot(steps, y, color=colors[a], alpha=0.35, lw=0.8)
            curves.append((steps, y))
        n = min(len(c[0]) for c in curves)
        with warnings.catch_warnings():   # a step where no seed has a value is nan, as meant
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.stack([c[1][:n] for c in curves]), axis=0)
        ax.plot(curves[0][0][:n], mean, color=colors[a], lw=2,
                label=f"{labels[a]} (mean of {len(curves)})")
    ax.set_title(title)
    ax.set_xlabel("RL step")
    ax.set_ylabel(ylabel)
    ax.legend()


def rl_value(row: Dict, key: str) -> float:
    """A logged RL row's `key`, nan where it has none. The scratchpad reward's per-step length
    metrics (`reward_response_len_correct` / `_wrong`, `reward_excess_len_*`) have no value at
    a step whose responses are all wrong (`_correct`) or all correct (`_wrong`); `stopped_frac`
    (responses that ended with eos) is returned as the truncated fraction 1 - stopped_frac."""
    if key not in row or (key.endswith("_correct") and row["accuracy"] <= 0) or (
            key.endswith("_wrong") and row["accuracy"] >= 1):
        return float("nan")
    return 1.0 - row[key] if key == "stopped_frac" else float(row[key])


def windowed(key: str, window, steps: int) -> Callable:
    """run -> the mean of rl_value(row, key) over the `window` ("early" | "late",
    early_late(steps)) of the run's RL rows (nan when no row there has a value)."""
    early, late = early_late(steps)
    lo, hi = early if window == "early" else late
    return lambda run: window_mean(run["rl"], key, lo, hi)


LENGTH_METRICS = [  # (label, RL-row key) of the scratchpad reward's length metrics
    ("length of incorrect responses", "reward_response_len_wrong"),
    ("length of correct responses", "reward_response_len_correct"),
    ("incorrect: length - own worked solution", "reward_excess_len_wrong"),
    ("correct: length - own worked solution", "reward_excess_len_correct"),
]


def rl_window_rows(steps: int, metrics, windows=("early", "late")) -> list:
    """comparison_table rows of RL-row metrics `(key, name, digits)`, each over the `windows`."""
    return [(f"{name}, {w}", windowed(key, w, steps), digits) for key, name, digits in metrics
            for w in windows]


def length_rows(steps: int) -> list:
    """comparison_table rows of LENGTH_METRICS, the truncated fraction and the train accuracy,
    early and late (1 decimal for lengths)."""
    return (rl_window_rows(steps, [(key, label, 1) for label, key in LENGTH_METRICS])
            + rl_window_rows(steps, [("stopped_frac", "truncated (no eos) fraction", 3)],
                             ["late"])
            + rl_window_rows(steps, [("accuracy", "train accuracy (sampled)", 3)]))


def arms_table(runs: Dict, arms, labels: Dict[str, str], baseline: str,
               rl_rows_of: Callable) -> Tuple[str, Dict]:
    """The experiments' usual comparison_table: the RL-row rows `rl_rows_of(steps)` (e.g.
    rl_window_rows, length_rows), then the held-out greedy accuracy and pass@k (every k the
    evaluation has) after SFT, greedy accuracy and pass@1 at each evaluation in between, and all
    of them after RL; `data` also holds "steps" and "ks"."""
    steps = last_rl_step(runs, arms)
    first = next(iter(runs[arms[0]].values()))
    ks = pass_ks(first["summary"]["after_rl"])
    (e0, e1), (l0, l1) = early_late(steps)
    keys = ["greedy_acc"] + [f"pass@{k}" for k in ks]
    mids = sorted({r["step"] for r in first["eval"]} - {0, steps})
    rows = (rl_rows_of(steps) + heldout_rows(keys, ["after_sft"])
            + [(f"held-out {k} at RL step {m}", lambda run, m=m, k=k: eval_value(run, m, k), 3)
               for m in mids for k in ("greedy_acc", "pass@1")]
            + heldout_rows(keys, ["after_rl"]))
    text, data = comparison_table(runs, arms, labels, rows, baseline, f"RL steps {steps}; early "
                                  f"= steps {e0}-{e1}, late = steps {l0}-{l1}; ")
    data.update(steps=steps, ks=ks)
    return text, data


def seed_curves_figure(runs: Dict, arms, seeds, panels, labels: Dict[str, str],
                       colors: Dict[str, str], extra_panels: int = 0):
    """A row of panels, one per `(RL-row key, title)` of `panels` (plot_seed_curves of
    rl_value(row, key), y axis axis_label(key)), then `extra_panels` empty ones for the caller
    -> (fig, axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(panels) + extra_panels
    fig, axes = plt.subplots(1, n, figsize=(4.75 * n, 4))
    for ax, (key, title) in zip(axes, panels):
        plot_seed_curves(ax, runs, arms, seeds, lambda r, k=key: rl_value(r, k), labels, colors,
                         title, axis_label(key))
    return fig, axes


def eval_value(run: Dict, step: int, key: str) -> float:
    """The held-out `key` of the run's evaluation at RL step `step` (nan when there is none)."""
    rows = [r for r in run["eval"] if r["step"] == step]
    return float(rows[-1][key]) if rows and key in rows[-1] else float("nan")


def heldout_rows(keys, which=("after_sft", "after_rl")) -> list:
    """comparison_table rows of the held-out evaluation `keys` (greedy_acc, pass@k) after SFT
    and after RL."""
    return [(f"held-out {k} {w.replace('_', ' ')}", lambda run, w=w, k=k: summary_value(run, w, k),
             3) for w in which for k in keys]


def plot_pass_at_k(ax, data: Dict, arms, labels: Dict[str, str], colors: Dict[str, str],
                   sft_arm: str) -> None:
    """One panel: held-out pass@k against k (log 2), the mean over seeds with its 95% t-band
    (clipped to [0, 1], clipped_band), after RL per arm and after SFT (from `sft_arm`: the arms
    of a seed share their SFT model); `data` is comparison_table's with heldout_rows of pass@k
    for every k in data["ks"]."""
    ks = data["ks"]
    for which, style in (("after_sft", ":"), ("after_rl", "-")):
        for a in ([sft_arm] if which == "after_sft" else arms):
            ci = [data["rows"][f"held-out pass@{k} {which.replace('_', ' ')}"]["ci"][a]
                  for k in ks]
            color = "black" if which == "after_sft" else colors[a]
            ax.plot(ks, [c["mean"] for c in ci], style, color=color, marker="o",
                    label="SFT model" if which == "after_sft" else labels[a])
            fill_band(ax, ks, ci, FRACTION, alpha=0.15, color=color)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per prompt, log2 scale)")
    ax.set_ylabel("held-out pass@k (fraction)")
    ax.set_title(f"held-out pass@k\n({BAND}, clipped to [0, 1])")
    ax.legend()


def plot_eval_curves(runs: Dict, arms, panels, labels: Dict[str, str], colors: Dict[str, str],
                     xlabel: str, title: str, path: str) -> None:
    """One panel per `(evaluation key, panel title)` of `panels`: per arm, each seed's held-out
    curve over the evaluation steps (thin) and their mean (thick, markers); saved to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seeds = common_seeds(runs, arms)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (key, name) in zip(axes[0], panels):
        for a in arms:
            curves = [([r["step"] for r in runs[a][s]["eval"]],
                       [r[key] for r in runs[a][s]["eval"]]) for s in seeds]
            for x, y in curves:
                ax.plot(x, y, color=colors[a], alpha=0.35, lw=0.8)
            n = min(len(x) for x, _ in curves)
            ax.plot(curves[0][0][:n], np.mean([y[:n] for _, y in curves], axis=0), lw=2,
                    color=colors[a], marker="o", label=f"{labels[a]} (mean of {len(seeds)})")
        ax.set(title=f"{name} (thin: seeds)", xlabel=xlabel, ylabel="fraction")
        ax.legend(fontsize=8)
    save_figure(fig, title, path)


def late_mean(run: Dict, key: str) -> float:
    """The mean of the run's training rows' `key` over the last 25% of its own steps (nan where
    no row has it)."""
    rows = run["rl"][len(run["rl"]) - len(run["rl"]) // 4:]
    return float(np.mean([r.get(key, np.nan) for r in rows])) if rows else float("nan")


def best_eval(run: Dict, key: str = "greedy_acc") -> float:
    """The run's best held-out `key` over its evaluations during RL (step > 0)."""
    return max(r[key] for r in run["eval"] if r["step"] > 0)


def proxy_truth_table(runs: Dict, arms, rl_metrics, extra_rows=()) -> Tuple[str, Dict]:
    """The table of an experiment that optimises a proxy and watches the truth (a learned reward
    model, an exploitable verifier): `rl_metrics` (key, label, digits) over the early and late
    windows of the RL rows, then held-out greedy accuracy after SFT, at its best during RL, after
    RL and after RL - best, held-out pass@1 after RL, then `extra_rows`; per arm, and per seed
    against the first arm. `data` also holds "steps"."""
    steps = last_rl_step(runs, arms)
    rows = rl_window_rows(steps, rl_metrics) + [
        ("held-out greedy accuracy after SFT",
         lambda run: summary_value(run, "after_sft", "greedy_acc"), 3),
        ("held-out greedy accuracy, best evaluation during RL", best_eval, 3),
        ("held-out greedy accuracy after RL",
         lambda run: summary_value(run, "after_rl", "greedy_acc"), 3),
        ("held-out greedy accuracy: after RL - best", lambda run: summary_value(
            run, "after_rl", "greedy_acc") - best_eval(run), 3),
        ("held-out pass@1 after RL", lambda run: summary_value(run, "after_rl", "pass@1"), 3),
        *extra_rows]
    text, data = comparison_table(runs, arms, {a: a for a in arms}, rows, arms[0],
                                  f"RL steps {steps}; early = the first 10%, late = the last "
                                  "25%; ")
    data["steps"] = steps
    return text, data


def plot_proxy_truth(runs: Dict, arms, data: Dict, rl_metrics, title: str, path: str) -> None:
    """A panel per RL-row metric of `rl_metrics` (seed curves per arm), then the held-out greedy
    accuracy's mean curve per arm (the true task)."""
    colors = {a: f"C{i}" for i, a in enumerate(arms)}
    fig, axes = seed_curves_figure(runs, arms, data["seeds"],
                                   [(k, name) for k, name, _ in rl_metrics], {a: a for a in arms},
                                   colors, 1)
    ax = axes[-1]
    for a in arms:
        ev = [sorted(runs[a][s]["eval"], key=lambda r: r["step"]) for s in data["seeds"]]
        x = [r["step"] for r in ev[0]]
        ax.plot(x, np.mean([[r["greedy_acc"] for r in e] for e in ev], axis=0), marker="o",
                color=colors[a], label=f"{a} (mean of {len(ev)})")
    ax.set(title="held-out greedy accuracy (true task)", xlabel="RL step",
           ylabel="accuracy (fraction)")
    ax.legend()
    save_figure(fig, title, path)

"""Sweep results: one table over settings with a 95% Student-t interval over seeds, curves with
bands (clipped to the metric's range: `band_range`), and `sweep.json` (what a notebook reads).

A setting is a point's overrides without the seed; its n seeds give mean and the two-sided 95%
t-interval `mean +- t(0.975, n-1) * sd / sqrt(n)` (sd with ddof 1; no interval for n = 1). A
point marked `stopped` (non-finite updates) is listed but left out of the means.
"""
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rlpt.io.metrics_log import MetricsLog
from rlpt.io.workdir import write_json_atomic

INTERVAL = "95% Student-t interval over seeds: mean +- t(0.975, n-1) * sd / sqrt(n), sd ddof=1"


def t_interval(values: Sequence[float]) -> Dict:
    """{'mean', 'lo', 'hi', 'n', 'values'}; lo = hi = mean for one value."""
    from scipy.special import stdtrit   # the t quantile; scipy.stats costs ~0.5 s to import
    v = np.asarray(values, np.float64)
    n, mean = len(v), float(np.mean(v))
    half = 0.0 if n < 2 else float(stdtrit(n - 1, 0.975) * np.std(v, ddof=1) / math.sqrt(n))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n,
            "values": [float(x) for x in v]}


def _fmt(ci: Dict, key: str = "") -> str:
    """`mean [lo, hi]`, the interval clipped to the metric's range (band_range: an accuracy's
    t-interval over 3 seeds can leave [0, 1]); sweep.json keeps the unclipped interval."""
    if ci["n"] < 2:
        return f"{ci['mean']:.3f}"
    lo, hi = ci["lo"], ci["hi"]
    rng = band_range(key, ci["values"]) if key else None
    if rng is not None:
        lo, hi = max(lo, rng[0]), min(hi, rng[1])
    return f"{ci['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def setting_label(setting: Dict) -> str:
    return ", ".join(f"{k.removeprefix('config.')}={v}" for k, v in setting.items()) or "(base)"


# a preference run's summary (rlpt.preference.train) names its two evaluations "initial" (after
# SFT) and "final" (after the preference or reward-model phase)
STAGE_ALIASES = {"after_sft": "initial", "after_rl": "final"}


def stage(summary: Dict, which: str) -> Dict:
    """summary["after_sft" | "after_rl"], or a preference summary's "initial" | "final"."""
    return summary[which] if which in summary else summary[STAGE_ALIASES[which]]


def settings_of(points, summaries: Dict[str, Dict]) -> List[Dict]:
    """[{setting, label, points, metrics: {'after_sft'|'after_rl': {key: interval}}}] in sweep
    order; stopped points are excluded from the intervals."""
    out: Dict[str, Dict] = {}
    for p in points:
        label = setting_label(p.setting)
        s = out.setdefault(label, {"setting": p.setting, "label": label, "points": []})
        s["points"].append(p.name)
    for s in out.values():
        ok = [summaries[n] for n in s["points"] if "stopped" not in summaries[n]]
        s["stopped"] = [n for n in s["points"] if "stopped" in summaries[n]]
        s["metrics"] = {}
        for which in ("after_sft", "after_rl"):
            keys = [k for k in (stage(ok[0], which) if ok else {}) if k not in ("phase", "step")]
            s["metrics"][which] = {k: t_interval([stage(x, which)[k] for x in ok]) for k in keys}
    return list(out.values())


def table(settings: List[Dict], points, summaries) -> str:
    """Settings, then points, by every metric some setting has, in order of first appearance
    ("-" where a setting lacks one: e.g. the tool rollout's call rates beside a plain arm)."""
    keys = list(dict.fromkeys(k for s in settings for k in s["metrics"]["after_rl"]))
    after = ("after RL" if all("after_rl" in sm for sm in summaries.values())
             else "after training")
    lines = [f"Mean over seeds [{INTERVAL}, clipped to the metric's range]; each cell: after "
             f"SFT -> {after}.", "",
             "| setting | seeds | " + " | ".join(keys) + " |",
             "|---|---:|" + "---|" * len(keys)]
    for s in settings:
        m = s["metrics"]
        n = next(iter(m["after_rl"].values()))["n"] if m["after_rl"] else 0
        cells = [f"{_fmt(m['after_sft'][k], k)} -> {_fmt(m['after_rl'][k], k)}"
                 if k in m["after_rl"] else "-" for k in keys]
        lines.append(f"| {s['label']} | {n} | " + " | ".join(cells) + " |")
    lines += ["", f"Per point (after SFT -> {after}):", "",
              "| point | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for p in points:
        sm = summaries[p.name]
        note = " (stopped: non-finite)" if "stopped" in sm else ""
        sft, rl = stage(sm, "after_sft"), stage(sm, "after_rl")
        lines.append(f"| {p.name}{note} | " + " | ".join(
            f"{sft[k]:.3f} -> {rl[k]:.3f}" if k in rl else "-" for k in keys) + " |")
    return "\n".join(lines)


def band_range(key: str, values: Sequence[float]) -> Optional[Tuple[float, float]]:
    """The range a band of metric `key` is clipped to, given every per-seed value of the run
    group: [0, 1] for a fraction (greedy_acc*, pass@*, sc_*, *accuracy*, *_acc, *_frac, *_rate);
    for a reward [0, 1] when every value lies in [0, 1] (the default tasks' 0/1 rewards), else the
    observed [min, max] (a shaped reward, e.g. an overlong penalty, can go below 0); None (not
    clipped) otherwise (a loss)."""
    k = key.rsplit("/", 1)[-1]
    if (k.startswith(("greedy_acc", "pass@", "sc_")) or "accuracy" in k
            or k.endswith(("_acc", "_frac", "_rate"))):
        return 0.0, 1.0
    if "reward" in k and len(values):
        lo, hi = float(np.min(values)), float(np.max(values))
        return (0.0, 1.0) if 0.0 <= lo and hi <= 1.0 else (lo, hi)
    return None


def band(key: str, per_seed: Sequence[Sequence[float]]) -> Dict:
    """Mean and 95% t band over seeds, step by step: per_seed[i][j] is seed i's value of `key` at
    step j -> {'mean', 'lo', 'hi' (lists over steps; lo and hi clipped to 'range'), 'n' (seeds),
    'range' (band_range of all the values; None: not clipped)}."""
    v = np.asarray(per_seed, np.float64)
    rng = band_range(key, v.ravel())
    cis = [t_interval(v[:, j]) for j in range(v.shape[1])]
    lo, hi = (np.array([c[side] for c in cis]) for side in ("lo", "hi"))
    if rng is not None:
        lo, hi = np.clip(lo, *rng), np.clip(hi, *rng)
    return {"mean": [c["mean"] for c in cis], "lo": lo.tolist(), "hi": hi.tolist(),
            "n": len(v), "range": rng}


def band_note(bands: List[Dict]) -> str:
    """What a panel's bands are, e.g. '95% t-interval over 3 seeds, clipped to [0, 1]'."""
    ns = sorted({b["n"] for b in bands})
    if not ns:
        return "no data"
    if ns[-1] < 2:
        return "1 seed: no band"
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    ranges = {b["range"] for b in bands if b["n"] > 1}
    if ranges == {None}:
        clip = "not clipped"
    elif ranges == {(0.0, 1.0)}:
        clip = "clipped to [0, 1]"
    elif len(ranges) == 1:
        clip = "clipped to the observed range [{:.3g}, {:.3g}]".format(*ranges.pop())
    else:
        clip = "clipped to [0, 1] or each setting's observed range"
    return f"95% t-interval over {seeds} seeds, {clip}"


def _draw(ax, rows_per_seed: List[List[Dict]], key: str, label: str) -> Optional[Dict]:
    """Mean curve over seeds with its band (`band`), on the steps every seed logged."""
    common = sorted(set.intersection(*[{r["step"] for r in rows if key in r}
                                       for rows in rows_per_seed]))
    if not common:
        return None
    by = [{r["step"]: r[key] for r in rows if key in r} for rows in rows_per_seed]
    b = band(key, [[d[s] for s in common] for d in by])
    line, = ax.plot(common, b["mean"], label=label)
    if b["n"] > 1:
        ax.fill_between(common, b["lo"], b["hi"], alpha=0.2, color=line.get_color())
    return b


# (phase, key, panel title, x label, y label); units: the SFT loss is the token-mean NLL
# (rlpt.step.sft_loss_and_grads), reward_mean the mean reward over a step's samples
PANELS = [("sft", "loss", "SFT loss", "SFT step", "loss (nats/token)"),
          ("rl", "reward_mean", "RL train reward", "RL step", "reward (mean over samples)"),
          ("eval", "greedy_acc", "held-out greedy accuracy", "RL step",
           "accuracy (fraction of prompts)"),
          ("eval", "pass@1", "held-out pass@1", "RL step", "accuracy (fraction of prompts)")]


def curves_figure(settings: List[Dict], rows: Dict[str, List[Dict]], title: str = "sweep"):
    """The Figure (not saved): one panel per PANELS entry, one line per setting (mean over its
    seeds) with a clipped 95% t band (`band`, described in the panel title)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4.6 * len(PANELS), 4.2))
    axes = fig.subplots(1, len(PANELS))
    for ax, (phase, key, name, xlabel, ylabel) in zip(axes, PANELS):
        bands = []
        for s in settings:
            per_seed = [[r for r in rows[n] if r["phase"] == phase] for n in s["points"]
                        if n not in s["stopped"]]
            if per_seed and all(per_seed):
                bands.append(_draw(ax, per_seed, key, s["label"]))
        bands = [b for b in bands if b is not None]
        ax.set_title(f"{name}\nband: {band_note(bands)}", fontsize=9)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(fontsize=7)
    fig.suptitle(f"{title}: SFT loss, RL train reward, held-out greedy accuracy and pass@1 "
                 "(mean over seeds per setting)")
    fig.tight_layout()
    return fig


def plot(settings: List[Dict], rows: Dict[str, List[Dict]], path: str,
         title: str = "sweep") -> None:
    curves_figure(settings, rows, title).savefig(path, dpi=110)


def write_results(sweep_dir: str, points, groups, point_dir) -> Dict:
    """Reads every point's summary and metrics and writes table.md, curves.png, sweep.json."""
    summaries, rows = {}, {}
    for p in points:
        wd = point_dir(sweep_dir, p)
        with open(os.path.join(wd, "summary.json")) as f:
            summaries[p.name] = json.load(f)
        rows[p.name] = MetricsLog(os.path.join(wd, "metrics.jsonl")).read()
    settings = settings_of(points, summaries)
    text = table(settings, points, summaries)
    with open(os.path.join(sweep_dir, "table.md"), "w") as f:
        f.write(text + "\n")
    name = os.path.basename(os.path.normpath(sweep_dir))
    plot(settings, rows, os.path.join(sweep_dir, "curves.png"), f"sweep {name}")
    group_of = {p.name: g for g in groups for p in g.points}
    result = {
        "interval": INTERVAL,
        "points": [{"name": p.name, "overrides": p.overrides, "seed": p.seed,
                    "setting": setting_label(p.setting), "group": group_of[p.name].index,
                    "vmapped": group_of[p.name].vmapped,
                    "workdir": os.path.relpath(point_dir(sweep_dir, p), sweep_dir),
                    "summary": summaries[p.name]} for p in points],
        "settings": [{k: s[k] for k in ("label", "setting", "points", "stopped", "metrics")}
                     for s in settings],
        "groups": [{"index": g.index, "points": [p.name for p in g.points],
                    "vmapped": g.vmapped, "reason": g.reason} for g in groups],
    }
    write_json_atomic(os.path.join(sweep_dir, "sweep.json"), result)
    return result

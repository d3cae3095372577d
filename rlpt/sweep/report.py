"""Sweep results: one table over settings with a 95% Student-t interval over seeds, curves with
bands, and `sweep.json` (what a notebook reads).

A setting is a point's overrides without the seed; its n seeds give mean and the two-sided 95%
t-interval `mean +- t(0.975, n-1) * sd / sqrt(n)` (sd with ddof 1; no interval for n = 1). A
point marked `stopped` (non-finite updates) is listed but left out of the means.
"""
import json
import math
import os
from typing import Dict, List, Sequence

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


def _fmt(ci: Dict) -> str:
    if ci["n"] < 2:
        return f"{ci['mean']:.3f}"
    return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def setting_label(setting: Dict) -> str:
    return ", ".join(f"{k.removeprefix('config.')}={v}" for k, v in setting.items()) or "(base)"


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
            keys = [k for k in (ok[0][which] if ok else {}) if k not in ("phase", "step")]
            s["metrics"][which] = {k: t_interval([x[which][k] for x in ok]) for k in keys}
    return list(out.values())


def table(settings: List[Dict], points, summaries) -> str:
    keys = list(settings[0]["metrics"]["after_rl"])
    lines = [f"Mean over seeds [{INTERVAL}]; each cell: after SFT -> after RL.", "",
             "| setting | seeds | " + " | ".join(keys) + " |",
             "|---|---:|" + "---|" * len(keys)]
    for s in settings:
        m = s["metrics"]
        n = m["after_rl"][keys[0]]["n"] if keys and m["after_rl"] else 0
        cells = [f"{_fmt(m['after_sft'][k])} -> {_fmt(m['after_rl'][k])}" for k in keys
                 if k in m["after_rl"]]
        lines.append(f"| {s['label']} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Per point (after SFT -> after RL):", "",
              "| point | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for p in points:
        sm = summaries[p.name]
        note = " (stopped: non-finite)" if "stopped" in sm else ""
        lines.append(f"| {p.name}{note} | " + " | ".join(
            f"{sm['after_sft'][k]:.3f} -> {sm['after_rl'][k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def _band(ax, rows_per_seed: List[List[Dict]], key: str, label: str):
    """Mean curve over seeds with its 95% t band, on the steps every seed logged."""
    common = sorted(set.intersection(*[{r["step"] for r in rows if key in r}
                                       for rows in rows_per_seed]))
    if not common:
        return
    by = [{r["step"]: r[key] for r in rows if key in r} for rows in rows_per_seed]
    cis = [t_interval([b[s] for b in by]) for s in common]
    line, = ax.plot(common, [c["mean"] for c in cis], label=label)
    if len(rows_per_seed) > 1:
        ax.fill_between(common, [c["lo"] for c in cis], [c["hi"] for c in cis], alpha=0.2,
                        color=line.get_color())


def plot(settings: List[Dict], rows: Dict[str, List[Dict]], path: str) -> None:
    """SFT loss, RL train reward and held-out greedy accuracy / pass@1: one line per setting
    (mean over seeds) with a 95% t band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("sft", "loss", "SFT loss", "sft step"), ("rl", "reward_mean", "RL train reward",
                                                         "rl step"),
              ("eval", "greedy_acc", "held-out greedy accuracy", "rl step"),
              ("eval", "pass@1", "held-out pass@1", "rl step")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8))
    for ax, (phase, key, title, xlabel) in zip(axes, panels):
        for s in settings:
            per_seed = [[r for r in rows[n] if r["phase"] == phase] for n in s["points"]
                        if n not in s["stopped"]]
            if per_seed and all(per_seed):
                _band(ax, per_seed, key, s["label"])
        ax.set(title=title, xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.suptitle("mean over seeds, band: 95% t-interval", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    plot(settings, rows, os.path.join(sweep_dir, "curves.png"))
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

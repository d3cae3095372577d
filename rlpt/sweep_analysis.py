"""Reading a finished sweep for an experiment's own analysis (experiments/*/analyze.py): the runs
by arm and seed, window means of logged metrics, intervals over seeds, smoothed curves.

A sweep directory holds `points/<name>/` per point (rlpt.sweep_run): `metrics.jsonl` (rows with
`phase` sft | rl | eval and `step`), `summary.json` (held-out evaluation after SFT and after RL)
and `config.json`. A point's arm is read from its name (by default the `algo.name=...` override;
a sweep without one has the single arm "all") and its seed from `seed=N`.
"""
import argparse
import glob
import json
import os
import re
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from rlpt.sweep_report import t_interval

ARM_PATTERN = r"algo\.name=([A-Za-z0-9_]+)"


def load_runs(sweep_dir: str, arm_pattern: str = ARM_PATTERN) -> Dict[str, Dict[int, Dict]]:
    """{arm: {seed: run}}, run = {"rl": rows, "eval": rows, "summary": dict or None,
    "cfg": dict or None}, from every point directory of `sweep_dir`."""
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
        run = {"rl": [r for r in rows if r["phase"] == "rl"],
               "eval": [r for r in rows if r["phase"] == "eval"]}
        for key in ("summary", "config"):
            path = os.path.join(d, f"{key}.json")
            run["cfg" if key == "config" else key] = (json.load(open(path))
                                                      if os.path.exists(path) else None)
        runs.setdefault(arm.group(1) if arm else "all", {})[int(seed.group(1))] = run
    return runs


def early_late(steps: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """The early window (the first 10% of `steps` RL steps) and the late one (the last 25%)."""
    return (1, max(1, steps // 10)), (steps - steps // 4 + 1, steps)


def window_mean(rows, key: str, lo: int, hi: int, keep=None) -> float:
    """Mean of `key` over the rows with lo <= step <= hi that have it (and pass `keep(row)`);
    nan when none does."""
    vals = [r[key] for r in rows
            if lo <= r["step"] <= hi and key in r and (keep is None or keep(r))]
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


def summary_value(run: Dict, which: str, key: str) -> float:
    """run["summary"][which][key] ("after_sft" | "after_rl"), nan for an unfinished point."""
    s: Optional[Dict] = run.get("summary")
    return float(s[which][key]) if s and key in s.get(which, {}) else float("nan")


def analysis_main(script_file: str, stem: str, analyze: Callable, plot: Callable,
                  load: Callable = load_runs, argv=None) -> None:
    """The command line of an experiment's analyze.py: `analyze.py SWEEP_DIR [--out DIR]
    [--stem NAME]` (DIR defaults to the script's own directory, NAME to `stem`). Prints
    `analyze(load(SWEEP_DIR))`'s text and writes it to `<NAME>.md`, its data to `<NAME>.json`
    and `plot(runs, data, <NAME>.png)`."""
    ap = argparse.ArgumentParser(description=f"writes {stem}.md, {stem}.json and {stem}.png")
    ap.add_argument("sweep_dir")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(script_file)))
    ap.add_argument("--stem", default=stem, help="the output files' name")
    a = ap.parse_args(argv)
    stem = a.stem
    runs = load(a.sweep_dir)
    text, data = analyze(runs)
    print(text)
    with open(os.path.join(a.out, f"{stem}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, f"{stem}.json"), "w") as f:
        json.dump(data, f, indent=1)
    plot(runs, data, os.path.join(a.out, f"{stem}.png"))
    print(f"wrote {a.out}/{stem}.md, {stem}.json, {stem}.png")

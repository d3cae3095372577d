"""An experiment's runs, archived beside its results, and its tables regenerated from them.

Every table and plot of `experiments/<name>/` is computed from sweep directories (`runs/...`,
not committed). The archive keeps what the analyses read, per point of each sweep: its
`config.json`, `summary.json` and `metrics.jsonl` (which holds the evaluation rows), plus the
sweep's `sweep.json` (a single `rlpt.train` run, such as a teacher, is archived as one point); one gzip file of JSON lines per sweep, `experiments/<name>/runs/<sweep>.jsonl.gz`
(first line `{"sweep": <sweep.json>}`, then `{"point", "config", "summary", "metrics"}` per
point, in name order; gzip without a timestamp, so the same runs give the same bytes).

`experiments/<name>/regenerate.json` says how the committed files were made:

    {"sweeps": {"main": "runs/yue_passk"},               # archive name -> where it ran
     "analyses": [{"sweeps": ["main"], "argv": []}],    # analyze.py SWEEPS ARGV, in order
                                                        # ("script": "lr_grid": lr_grid.py)
     "table": "main"}                                   # table.md: that sweep's report

`"table"` may also be a list of archive names: the first sweep's report is `table.md` and
`curves.png`, each other's `table_<name>.md` and `curves_<name>.png` (kimi_length's four sweeps).

    python -m experiments.archive yue_passk       # archive the sweeps named there
    python scripts/regenerate_experiments.py --out DIR [--tables_only]

`regenerate(name, out)` extracts the archives into point directories of the layout
`python -m rlpt.sweep` writes, runs each analysis into `out` (`--out`), rewrites `table.md` and
`curves.png` with the sweep report (rlpt.sweep.report), and compares every regenerated `.md`
with the committed one byte for byte (plots are regenerated, not compared: PNG bytes depend on
the matplotlib build).
"""
import argparse
import contextlib
import gzip
import io
import json
import os
import runpy
import sys
import tempfile
from types import SimpleNamespace
from typing import Dict, List

EXPERIMENTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(EXPERIMENTS)
POINT_FILES = ("config", "summary")


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def write_archive(sweep_dir: str, path: str) -> int:
    """Archives `sweep_dir` (a finished `rlpt.sweep` workdir, or a finished `rlpt.train`
    workdir: then one point named after it and the sweep line `{"single_run": true}`) into
    `path`; -> points archived. A sweep stopped before its end (no `sweep.json`, every point
    archived finished) gets the sweep line `{"stopped": true}`: its analyses regenerate, it has
    no sweep table."""
    points_dir = os.path.join(sweep_dir, "points")
    names = sorted(os.listdir(points_dir)) if os.path.isdir(points_dir) else []
    single = not names and os.path.exists(os.path.join(sweep_dir, "summary.json"))
    if not names and not single:
        raise FileNotFoundError(f"{sweep_dir}: no points/* and no summary.json (not a finished "
                                "sweep or run?)")
    if single:
        names = [os.path.basename(os.path.normpath(sweep_dir))]
        lines = [{"sweep": {"single_run": True}}]
    elif os.path.exists(os.path.join(sweep_dir, "sweep.json")):
        lines = [{"sweep": _read_json(os.path.join(sweep_dir, "sweep.json"))}]
    else:
        unfinished = [n for n in names
                      if not os.path.exists(os.path.join(points_dir, n, "summary.json"))]
        if unfinished:
            raise FileNotFoundError(f"{sweep_dir}: no sweep.json and unfinished points "
                                    f"{unfinished} (a running or killed sweep?)")
        lines = [{"sweep": {"stopped": True}}]
    for name in names:
        d = sweep_dir if single else os.path.join(points_dir, name)
        with open(os.path.join(d, "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f if line.strip()]
        lines.append({"point": name, "metrics": metrics,
                      **{k: _read_json(os.path.join(d, f"{k}.json")) for k in POINT_FILES}})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()   # keys in file order
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as f:
        f.write(data)
    return len(names)


def extract_archive(path: str, sweep_dir: str) -> Dict:
    """Writes the archive's points under `sweep_dir/points/` and its `sweep.json`; -> sweep.json."""
    with gzip.open(path, "rt") as f:
        lines = [json.loads(line) for line in f]
    sweep = lines[0]["sweep"]
    for x in lines[1:]:
        d = os.path.join(sweep_dir, "points", x["point"])
        os.makedirs(d, exist_ok=True)
        for k in POINT_FILES:
            with open(os.path.join(d, f"{k}.json"), "w") as f:
                json.dump(x[k], f)
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in x["metrics"])
    with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
        json.dump(sweep, f)
    return sweep


def _tuples(overrides: Dict) -> Dict:
    """sweep.json's overrides with JSON's lists read back as the tuples the sweep's points held
    (a config's sequences, e.g. `algo.shaping=("kimi_length_penalty",)`), so the report labels
    its rows as it did when it ran."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}


def sweep_report(sweep_dir: str, sweep: Dict, out: str, title: str, suffix: str = "",
                 plots: bool = True) -> None:
    """table<suffix>.md and curves<suffix>.png (titled `title`; not without `plots`) of an
    extracted sweep, as rlpt.sweep.report.write_results wrote them when it ran (its points from
    sweep.json)."""
    from rlpt.io.metrics_log import MetricsLog
    from rlpt.sweep import report
    from rlpt.sweep.points import PREFIX
    overrides = {p["name"]: _tuples(p["overrides"]) for p in sweep["points"]}
    points = [SimpleNamespace(name=name, overrides=o,
                              setting={k: v for k, v in o.items() if k != PREFIX + "seed"})
              for name, o in overrides.items()]
    summaries = {p.name: _read_json(os.path.join(sweep_dir, "points", p.name, "summary.json"))
                 for p in points}
    rows = {p.name: MetricsLog(os.path.join(sweep_dir, "points", p.name, "metrics.jsonl")).read()
            for p in points}
    settings = report.settings_of(points, summaries)
    with open(os.path.join(out, f"table{suffix}.md"), "w") as f:
        f.write(report.table(settings, points, summaries) + "\n")
    if plots:
        report.plot(settings, rows, os.path.join(out, f"curves{suffix}.png"), title)


def manifest(name: str, experiments: str = EXPERIMENTS) -> Dict:
    path = os.path.join(experiments, name, "regenerate.json")
    return _read_json(path) if os.path.exists(path) else None


def archive_experiment(name: str, experiments: str = EXPERIMENTS) -> List[str]:
    """Archives the sweeps of `name`'s regenerate.json from where they ran (paths relative to
    the repository root); -> the archive paths written."""
    m = manifest(name, experiments)
    if m is None:
        raise FileNotFoundError(f"{experiments}/{name}/regenerate.json: no manifest")
    out = []
    for sweep, workdir in m["sweeps"].items():
        path = os.path.join(experiments, name, "runs", f"{sweep}.jsonl.gz")
        n = write_archive(os.path.join(REPO, workdir), path)
        print(f"{path}: {n} points of {workdir}")
        out.append(path)
    return out


def run_analysis(script: str, argv: List[str]) -> None:
    """`python SCRIPT ARGV...`, run in this process (the imports, jax's among them, are paid once
    for all experiments), its printed table swallowed; a failure names the command."""
    saved = sys.argv
    sys.argv = [script, *argv]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
    except (Exception, SystemExit) as e:
        if not (isinstance(e, SystemExit) and not e.code):
            raise RuntimeError(f"{' '.join(sys.argv)} failed: {e!r}") from e
    finally:
        sys.argv = saved
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def regenerate(name: str, out: str, experiments: str = EXPERIMENTS, plots: bool = True) -> Dict:
    """Regenerates `name`'s tables and plots (tables only without `plots`) into `out` (module
    doc); -> {"status": "identical" | "differs" | "no archive", "files": {file: "identical" |
    "differs" | "missing"}}."""
    m = manifest(name, experiments)
    if m is None or not all(os.path.exists(os.path.join(experiments, name, "runs",
                                                        f"{s}.jsonl.gz")) for s in m["sweeps"]):
        return {"status": "no archive", "files": {}}
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"regen-{name}-") as tmp:
        dirs, sweeps = {}, {}
        for s in m["sweeps"]:
            dirs[s] = os.path.join(tmp, s)
            sweeps[s] = extract_archive(os.path.join(experiments, name, "runs",
                                                     f"{s}.jsonl.gz"), dirs[s])
        for a in m["analyses"]:
            script = os.path.join(experiments, name, "analyze.py")
            if a.get("script") == "lr_grid":   # experiments/lr_grid.py (its own command line)
                script = os.path.join(EXPERIMENTS, "lr_grid.py")
            run_analysis(script, [*[dirs[s] for s in a["sweeps"]], *a.get("argv", []),
                                  "--out", out, *([] if plots else ["--no_plots"])])
        tables = m.get("table") or []
        for i, t in enumerate([tables] if isinstance(tables, str) else tables):
            sweep_report(dirs[t], sweeps[t], out,
                         "sweep " + os.path.basename(os.path.normpath(m["sweeps"][t])),
                         "" if i == 0 else f"_{t}", plots)
    files = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".md"):
            committed = os.path.join(experiments, name, f)
            if not os.path.exists(committed):
                files[f] = "missing"
                continue
            with open(committed, "rb") as a, open(os.path.join(out, f), "rb") as b:
                files[f] = "identical" if a.read() == b.read() else "differs"
    ok = bool(files) and all(v == "identical" for v in files.values())
    return {"status": "identical" if ok else "differs", "files": files}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Archive an experiment's sweeps (module doc).")
    ap.add_argument("name", help="experiments/<name>, with a regenerate.json")
    a = ap.parse_args(argv)
    archive_experiment(a.name)


if __name__ == "__main__":
    main()

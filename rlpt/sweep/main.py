"""Sweeps: every point of a config's `get_sweep(arg)`, vmappable groups as one compiled program.

    python -m rlpt.sweep --config=configs/grpo_arith.py:seeds=3 --workdir=runs/sweep_arith \
        [--config.rl.steps=100 ...]

The config file gives `get_config(arg)` (the base) and `get_sweep(arg)` (the points: override
dicts, built with rlpt.sweep.points.axis / product / seeds). Points are checked before
anything compiles (rlpt.sweep.points), then grouped: points that differ only in the seed and
dynamic hyperparameters run as ONE program with a leading run axis (rlpt.sweep.run: SFT, RL and
evaluation vmapped, the run axis over the devices); a group that cannot be vmapped (a host
reward, the tool rollout) runs its points one after another with `rlpt.train.run`, and the
log says so. wandb is off for sweep points (metrics are in each point's metrics.jsonl).

Writes under --workdir: config.json (the base config and the points; a restart with other
points is refused), points/<name>/{config.json, metrics.jsonl, summary.json}, groups/g<i>/
(the stacked checkpoints, done.json once the group finished), table.md (mean and 95% t-interval
over seeds per setting), curves.png (bands) and sweep.json. Killed at any point and restarted
with the same command, a sweep skips its finished groups, resumes the others from their last
checkpoint and ends with the same table. `--sft_from=DIR` (repeatable) lets a follow-up sweep
start from the SFT warm-ups another sweep cached (rlpt.sweep.sft_cache); `--only=REGEX` runs
the points whose name matches (e.g. more seeds of a finished sweep, in a new workdir).
`--config.KEY=VALUE` overrides a field of the base config, as for rlpt.train (not a field the
points set).
"""
import argparse
import json
import os
import re
import sys
import time

from tqdm import tqdm

from rlpt.algorithms.base import check_files
from rlpt.config import config_file, override
from rlpt.io.cli import user_errors
from rlpt.io.workdir import (ConfigChangedError, WorkdirLock, check_config_change,
                              listed_changes, write_json_atomic)
from rlpt.sweep import sft_cache
from rlpt.sweep.eval_cache import EvalCache
from rlpt.sweep.points import SweepError, group_points, points_to_configs, run_steps
from rlpt.sweep.report import write_results
from rlpt.sweep.run import group_dir, point_dir, run_group


def load_sweep(spec: str):
    """`'configs/x.py:arg'` -> (base config, points) from the file's get_config / get_sweep."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise SweepError(f"--config: no such file {path!r}")
    module = config_file(path)
    if not hasattr(module, "get_sweep"):
        raise SweepError(f"{path} has no get_sweep(arg): a sweep config returns its points "
                         "there (see rlpt.sweep.points)")
    try:
        return module.get_config(arg), module.get_sweep(arg)
    except ValueError as e:  # e.g. an unknown argument after ':'
        raise SweepError(f"--config={spec}: {e}") from None


def apply_overrides(base, points, overrides) -> None:
    """`--config.KEY=VALUE` arguments applied to the base config (rlpt.config.override); a key
    that a point sets (or a part of one) is refused: the points would overwrite it."""
    for arg in overrides:
        key, _, text = arg[len("--config."):].partition("=")
        set_by = [k for p in points for k in p if k.startswith("config.") and
                  (k[7:] == key or k[7:].startswith(key + ".") or key.startswith(k[7:] + "."))]
        if set_by:
            raise SweepError(f"--config.{key}: the sweep's points set {set_by[0]}; change it "
                             "through the config file's arguments instead")
        override(base, key, text)   # a UserError naming the key: one line, as a SweepError


def select_points(base, points, pattern: str):
    """The points whose name (`points/<name>`) matches the regular expression `pattern`
    (re.search), e.g. `seed=[34]$` to add seeds 3 and 4 to a finished 3-seed sweep in a new
    workdir (`--sft_from` does not help there: those seeds' warm-ups were never trained)."""
    names = [p.name for p in points_to_configs(base, points)]
    try:
        keep = [pt for pt, name in zip(points, names) if re.search(pattern, name)]
    except re.error as e:
        raise SweepError(f"--only={pattern!r}: not a regular expression ({e})") from None
    if not keep:
        raise SweepError(f"--only={pattern!r} matches none of the {len(names)} points "
                         f"(e.g. {names[0]!r})")
    return keep


def _claim(workdir: str, base, points) -> None:
    """Refuses a restart with another base config or other points; writes config.json."""
    spec = {"base": json.loads(base.to_json_best_effort(sort_keys=True)), "points": points}
    text = json.dumps(spec, indent=2, sort_keys=True, default=repr)
    try:
        check_config_change(workdir, text, allow=False)
    except ConfigChangedError as e:
        raise SweepError(f"{workdir} holds a sweep with another config or other points "
                         f"({listed_changes(e.changes)}); use a new workdir") from None
    write_json_atomic(os.path.join(workdir, "config.json"), json.loads(text))


def _run_alone(p, sweep_dir: str, sft_from=()) -> None:
    """A point outside any vmapped program: rlpt.train.run, its SFT warm-up and its evaluation
    before RL shared through the sweep's caches (rlpt.sweep.sft_cache.PointCache,
    rlpt.sweep.eval_cache.EvalCache)."""
    from rlpt.train import run
    cfg = p.cfg.copy_and_resolve_references()
    cfg.wandb.mode = "disabled"
    run(cfg, point_dir(sweep_dir, p), sft_cache=sft_cache.PointCache(sweep_dir, p, sft_from),
        eval_cache=EvalCache(sweep_dir, p, sft_from))


def run_sweep(base, points, workdir: str, devices=None, progress: bool = True,
              sft_from=()) -> dict:
    """Runs (or resumes) a sweep (module doc); returns what sweep.json holds. `sft_from`: other
    sweep workdirs whose SFT caches may supply this sweep's warm-ups (rlpt.sweep.sft_cache)."""
    for d in sft_from:
        if not os.path.isdir(os.path.join(d, "sft_cache")):
            raise SweepError(f"--sft_from={d}: no sft_cache/ there (not a sweep workdir, or "
                             "its first group has not finished SFT)")
    pts = points_to_configs(base, points)
    for p in pts:   # files a run needs (rlpt.algorithms.base.check_files), before any compiling
        try:
            check_files(p.cfg)
        except ValueError as e:
            raise SweepError(f"sweep point {p.name}: {e}") from None
    groups = group_points(pts)
    os.makedirs(workdir, exist_ok=True)
    with WorkdirLock(workdir):
        _claim(workdir, base, points)
        total = sum(run_steps(p.cfg) for p in pts)
        bar = tqdm(total=total, desc="sweep", unit="run-step", dynamic_ncols=True,
                   mininterval=1.0, file=sys.stdout,
                   disable=not progress or os.environ.get("RLPT_NO_PROGRESS") == "1")
        bar.write(f"sweep: {len(pts)} points in {len(groups)} group(s), workdir {workdir}")
        t0 = time.time()
        for g in groups:
            steps = sum(run_steps(p.cfg) for p in g.points)
            done = os.path.join(group_dir(workdir, g), "done.json")
            if os.path.exists(done):
                bar.write(f"sweep: group g{g.index:03d} ({len(g.points)} points) finished "
                          "before: skipped")
                bar.update(steps)
                continue
            if g.vmapped:
                run_group(g, workdir, bar, devices, sft_from)
            else:
                bar.write(f"sweep: group g{g.index:03d}: {len(g.points)} points one after "
                          f"another, not vmapped: {g.reason}")
                for p in g.points:
                    _run_alone(p, workdir, sft_from)
                    bar.update(run_steps(p.cfg))
            write_json_atomic(done, {"points": [p.name for p in g.points],
                                     "seconds_last_session": round(time.time() - t0, 1)})
        bar.close()
        result = write_results(workdir, pts, groups, point_dir)
    with open(os.path.join(workdir, "table.md")) as f:
        print(f.read() + f"(table: {workdir}/table.md, curves: {workdir}/curves.png, "
              f"data: {workdir}/sweep.json)")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rlpt.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="config file with get_sweep, e.g. "
                    "configs/grpo_arith.py:seeds=3")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only", metavar="REGEX", help="run only the points whose name matches "
                    "(re.search), e.g. 'seed=[34]$'")
    ap.add_argument("--sft_from", action="append", default=[], metavar="DIR",
                    help="another sweep's workdir (repeatable): runs whose SFT warm-up it "
                    "cached start RL from those params (rlpt.sweep.sft_cache)")
    ap.add_argument("--config.KEY", dest="_", metavar="VALUE", help="override a field of the "
                    "base config, as rlpt.train does (e.g. --config.rl.steps=200); not one a "
                    "point sets")
    a, rest = ap.parse_known_args(argv)
    overrides = [r for r in rest if r.startswith("--config.") and "=" in r]
    if len(overrides) < len(rest):
        ap.error(f"unrecognized arguments: {' '.join(r for r in rest if r not in overrides)}")
    with user_errors("rlpt.sweep", a.workdir):
        base, points = load_sweep(a.config)
        apply_overrides(base, points, overrides)
        if a.only:
            points = select_points(base, points, a.only)
        run_sweep(base, points, a.workdir, sft_from=a.sft_from)

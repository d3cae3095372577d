"""Regenerates every experiment's tables and plots from its archived runs (experiments/archive.py)
and says which regenerate identically.

    python scripts/regenerate_experiments.py --out DIR [--only NAME ...] [--tables_only]

For each experiment with an analysis (`experiments/<name>/analyze.py`): its archives
(`runs/*.jsonl.gz`) are extracted, its analyses and its sweep table rerun into `DIR/<name>/`,
and every regenerated `.md` table compared byte for byte with the committed one. An experiment
without an archive (or a `regenerate.json`) counts as not regenerating. The last line is
`N of M experiments regenerate identically`; the exit status is 0 either way (a table that
differs is reported, not an error of this script). `--tables_only` skips the plots (the
comparison is the same: plots are never compared); the test suite regenerates so.
"""
import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from experiments.archive import EXPERIMENTS, regenerate  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="where the regenerated files go (created)")
    ap.add_argument("--only", nargs="*", help="these experiments only")
    ap.add_argument("--tables_only", action="store_true",
                    help="regenerate and compare the tables, skip the plots")
    ap.add_argument("--experiments", default=EXPERIMENTS, help=argparse.SUPPRESS)  # tests
    a = ap.parse_args(argv)
    names = sorted(os.path.basename(os.path.dirname(p))
                   for p in glob.glob(os.path.join(a.experiments, "*", "analyze.py")))
    if a.only:
        unknown = sorted(set(a.only) - set(names))
        if unknown:
            ap.error(f"--only: no experiments/<name>/analyze.py for {unknown}")
        names = [n for n in names if n in a.only]
    same = 0
    for name in names:
        r = regenerate(name, os.path.join(a.out, name), a.experiments, not a.tables_only)
        files = ", ".join(f"{f} {v}" for f, v in r["files"].items())
        print(f"{name}: {r['status']}" + (f" ({files})" if files else ""), flush=True)
        same += r["status"] == "identical"
    print(f"{same} of {len(names)} experiments regenerate identically")
    return same, len(names)


if __name__ == "__main__":
    main()

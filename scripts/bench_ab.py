"""A/B speed comparison of the fused GRPO step between a git revision and the working tree.

    python scripts/bench_ab.py --ref e99129f                  # W1 and W2, 2 alternating rounds
    python scripts/bench_ab.py --ref HEAD~1 --workloads W2 --rounds 3

Each measurement is a fresh subprocess that imports `rlpt` from one source tree (the revision is
exported with `git archive` into a temporary directory) and times it with `scripts/bench.py`'s
`bench_rlpt` (each tree with its own scripts/bench.py, so the API may differ between them; median of steady-state steps of the fused step, plus the separately jitted
sampling / reference / update pieces). The two trees alternate round by round, so a change in
machine load hits both; the table prints every round, then the median over rounds and the ratio.
Timings on a shared CPU move between runs: compare only numbers printed by one invocation.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PIECES = ("t", "sample", "ref", "update")


def child(tree, workload, steps):
    """Times one workload with the rlpt package found in `tree`; prints one JSON line."""
    sys.path.insert(0, tree)
    import rlpt  # noqa: F401  (imported first so bench.py's own sys.path entry cannot shadow it)
    if not os.path.abspath(rlpt.__file__).startswith(os.path.abspath(tree)):
        raise SystemExit(f"imported rlpt from {rlpt.__file__}, expected it under {tree}")
    sys.path.insert(1, os.path.join(tree, "scripts"))  # each tree timed by its own bench.py
    import bench
    if not os.path.abspath(bench.__file__).startswith(os.path.abspath(tree)):
        raise SystemExit(f"imported bench from {bench.__file__}, expected it under {tree}")
    r = bench.bench_rlpt(workload, "while", steps)
    print(json.dumps({k: r[k] for k in PIECES}))


def measure(tree, workload, steps):
    out = subprocess.run([sys.executable, __file__, "--child", tree, "--workloads", workload,
                          "--steps", str(steps)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", help="git revision to compare the working tree against")
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.workloads, a.steps)
    if not a.ref:
        ap.error("--ref is required")
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", ROOT, "archive", a.ref, "rlpt", "scripts", "configs"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {a.ref: tmp, "working tree": ROOT}
        print(f"load average before the run: {os.getloadavg()[0]:.2f}")
        print("| workload | tree | round | fused step s | sampling s | reference s | update s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        results = {}
        for w in a.workloads.split(","):
            for rnd in range(a.rounds):
                for name, tree in trees.items():
                    r = measure(tree, w, a.steps)
                    results.setdefault((w, name), []).append(r)
                    print(f"| {w} | {name} | {rnd} | " + " | ".join(f"{r[k]:.3f}" for k in PIECES)
                          + " |", flush=True)
        print("\nmedian over rounds (fused step):")
        for w in a.workloads.split(","):
            med = {n: statistics.median(r["t"] for r in results[(w, n)]) for n in trees}
            print(f"  {w}: {a.ref} {med[a.ref]:.3f} s, working tree {med['working tree']:.3f} s "
                  f"-> {med[a.ref] / med['working tree']:.2f}x")


if __name__ == "__main__":
    main()

"""Runs one config over several seeds (sequentially, each in its own workdir) and writes a table.

    python scripts/sweep.py --config=configs/grpo_arith.py --seeds=0,1,2 --out=runs/sweep_grpo_arith

Each seed is a normal `rlpt.train` run (so it resumes if restarted); the table (markdown, also
printed) has after-SFT and after-RL evaluation per seed plus the mean over seeds.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="config file, optionally with :args")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", required=True)
    ap.add_argument("overrides", nargs="*", help="extra --config.key=value flags")
    a, unknown = ap.parse_known_args()
    a.overrides += unknown
    path, _, arg = a.config.partition(":")
    rows = []
    for seed in a.seeds.split(","):
        wd = os.path.join(a.out, f"seed{seed}")
        spec = f"{path}:{arg + ',' if arg else ''}seed={seed}"
        cmd = [sys.executable, "-m", "rlpt.train", f"--config={spec}", f"--workdir={wd}",
               *a.overrides]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        rows.append((seed, json.load(open(os.path.join(wd, "summary.json")))))
    keys = [k for k in rows[0][1]["after_sft"] if k not in ("phase", "step")]
    lines = ["| seed | " + " | ".join(f"{k} SFT -> RL" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for seed, s in rows:
        lines.append(f"| {seed} | " + " | ".join(
            f"{s['after_sft'][k]:.3f} -> {s['after_rl'][k]:.3f}" for k in keys) + " |")
    mean = lambda which, k: np.mean([s[which][k] for _, s in rows])
    lines.append("| mean | " + " | ".join(
        f"{mean('after_sft', k):.3f} -> {mean('after_rl', k):.3f}" for k in keys) + " |")
    table = "\n".join(lines)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()

"""Sweep speed: N seeds of configs/grpo_arith.py (SFT + RL + evaluation) as one vmapped sweep
(`rlpt.sweep.main.run_sweep`) vs the same N runs one after another (`rlpt.train.run` in one
process), wall-clock and peak memory, from one invocation:

    python scripts/bench_sweep.py                      # sizes 2,4,8,16; 50 SFT + 20 RL steps
    python scripts/bench_sweep.py --sizes=8 --sft_steps=500 --rl_steps=1000   # the full run
    python scripts/bench_sweep.py --step_scaling=1,8   # one SFT / RL step: R runs vs one run

The steps are reduced by default (the full default run is 500 SFT + 1000 RL steps) so the
benchmark finishes in minutes; evaluation is the config's (256 prompts x 8 samples, after SFT
and after RL). Each measurement runs in a fresh subprocess (peak RSS is per process). The
sequential child runs max(sizes) seeds and records the time after each run: the sequential time
of N runs is the time of its first N runs. Times exclude interpreter start and imports (both
modes pay them once). Prints one line per size: `runs=N: X.XXx vs sequential`.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def base_config(a):
    sys.path.insert(0, REPO)
    from configs import grpo_arith
    c = grpo_arith.get_config(f"size={a.size}")
    c.sft.steps, c.rl.steps = a.sft_steps, a.rl_steps
    c.ckpt_every = c.log_every = max(a.rl_steps, a.sft_steps)
    c.wandb.mode = "disabled"
    return c


COMPILE_EVENTS = {"/jax/core/compile/backend_compile_duration": "compile",
                  "/jax/core/compile/jaxpr_trace_duration": "trace",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower"}


def child(a):
    os.environ["RLPT_NO_PROGRESS"] = "1"
    import jax
    from rlpt.sweep.main import run_sweep
    from rlpt.sweep.points import seeds
    from rlpt.train import run
    base = base_config(a)
    out = {"mode": a.child, "runs": a.runs, "compile": 0.0, "trace": 0.0, "lower": 0.0}

    def on_event(event, seconds, **_):   # jax's own timings of tracing, lowering, compiling
        if event in COMPILE_EVENTS:
            out[COMPILE_EVENTS[event]] += seconds
    jax.monitoring.register_event_duration_secs_listener(on_event)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        if a.child == "vmap":
            run_sweep(base, seeds(a.runs), os.path.join(tmp, "sweep"), progress=False)
            out["seconds"] = time.time() - t0
        else:
            out["cumulative_seconds"] = []
            for s in range(a.runs):
                cfg = base.copy_and_resolve_references()
                cfg.seed = s
                run(cfg, os.path.join(tmp, f"seed{s}"))
                out["cumulative_seconds"].append(time.time() - t0)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["cpu_seconds"] = time.process_time()
    print("BENCH " + json.dumps(out), flush=True)


def spawn(a, mode, runs):
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={mode}", f"--runs={runs}",
           f"--sft_steps={a.sft_steps}", f"--rl_steps={a.rl_steps}", f"--size={a.size}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO))
    lines = [x for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
    if proc.returncode or not lines:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):])


def step_scaling(a):
    """Steady-state time of one vmapped SFT step and one vmapped fused RL step for R runs (the
    sweep's own programs and inputs, rlpt.sweep.run.sft_phase / rl_phase), per run, and how
    many cores were busy."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec
    from rlpt.sweep.points import points_to_configs, seeds
    from rlpt.sweep.run import rl_phase, run_mesh, sft_phase
    from rlpt.build import build_model, build_task
    base = base_config(a)
    task = build_task(base)
    model_cfg, params = build_model(base)
    for R in [int(x) for x in a.step_scaling.split(",")]:
        pts = points_to_configs(base, seeds(R))
        sh = NamedSharding(run_mesh(R), PartitionSpec("run"))
        for name, phase in (("SFT step", sft_phase), ("RL step", rl_phase)):
            fn, state, batch_of = phase(pts, task, model_cfg, [params] * R, sh)
            state, m = fn(state, batch_of(0))   # compiles
            jax.block_until_ready(m)
            t, cpu, n = time.time(), time.process_time(), 10
            for i in range(1, n + 1):
                state, m = fn(state, batch_of(i))
            jax.block_until_ready(m)
            wall, busy = (time.time() - t) / n, (time.process_time() - cpu) / (time.time() - t)
            print(f"{name} runs={R}: {wall * 1e3:.1f} ms ({wall / R * 1e3:.1f} ms per run), "
                  f"{busy:.2f} of {os.cpu_count()} cores busy", flush=True)


def breakdown(r) -> str:
    return (f"XLA compile {r['compile']:.1f} s, tracing {r['trace']:.1f} s, lowering "
            f"{r['lower']:.1f} s, CPU time of the process {r['cpu_seconds']:.0f} s (imports included)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2,4,8,16")
    ap.add_argument("--sft_steps", type=int, default=50)
    ap.add_argument("--rl_steps", type=int, default=20)
    ap.add_argument("--size", default="tiny", help="model preset")
    ap.add_argument("--child", choices=("vmap", "seq"))
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--step_scaling", default="",
                    help="e.g. 1,8: only time one vmapped SFT and RL step for these run counts")
    a = ap.parse_args()
    if a.child:
        return child(a)
    if a.step_scaling:
        return step_scaling(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    sys.path.insert(0, REPO)
    from configs import grpo_arith
    full = grpo_arith.get_config(f"size={a.size}")
    steps = ("the config's" if (a.sft_steps, a.rl_steps) == (full.sft.steps, full.rl.steps)
             else f"reduced from {full.sft.steps} + {full.rl.steps}")
    print(f"configs/grpo_arith.py size={a.size}, {a.sft_steps} SFT + {a.rl_steps} RL steps "
          f"({steps}), eval 256 prompts x 8 samples after SFT and after RL; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    seq = spawn(a, "seq", max(sizes))
    print(f"sequential: {max(sizes)} runs, cumulative seconds "
          f"{[round(x, 1) for x in seq['cumulative_seconds']]}, peak RSS "
          f"{seq['peak_rss_mb']:.0f} MB; {breakdown(seq)}", flush=True)
    for n in sizes:
        v = spawn(a, "vmap", n)
        t_seq = seq["cumulative_seconds"][n - 1]
        print(f"runs={n}: {t_seq / v['seconds']:.2f}x vs sequential  (vmapped {v['seconds']:.1f} s,"
              f" sequential {t_seq:.1f} s; peak RSS vmapped {v['peak_rss_mb']:.0f} MB, "
              f"sequential {seq['peak_rss_mb']:.0f} MB; vmapped {breakdown(v)})", flush=True)


if __name__ == "__main__":
    main()

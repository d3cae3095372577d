"""Runs one command as N local processes of one JAX job (a localhost coordinator): the way to
try multi-host code on one machine, and what the multi-process tests use.

    python -m rlpt.launch --processes=2 --devices_per_process=4 -- \
        python -m rlpt.train --config=configs/grpo_arith.py:quick=1 --workdir=runs/mp

Each process gets RLPT_COORDINATOR=localhost:<port>, RLPT_NUM_PROCESSES and RLPT_PROCESS_ID
(read by rlpt.distributed.initialize) and, on CPU, `devices_per_process` fake devices. Output
lines are prefixed with the process id. Exits with the first non-zero exit status of any
process (0 when all succeed). On a real cluster use the cluster's launcher instead
(docs/scaling.md): the same three variables, or `distributed.cluster=auto`.
"""
import argparse
import os
import socket
import subprocess
import sys
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def process_env(i: int, n: int, port: int, devices: int, base=None) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(RLPT_COORDINATOR=f"localhost:{port}", RLPT_NUM_PROCESSES=str(n),
               RLPT_PROCESS_ID=str(i))
    if devices:
        env.setdefault("JAX_PLATFORMS", "cpu")
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
    return env


def _pump(proc, i, out):
    for line in proc.stdout:
        out.write(f"[{i}] {line}")
        out.flush()


def launch(command, processes: int, devices_per_process: int = 0, port: int = 0,
           cwd=None, out=None) -> int:
    """Starts `command` `processes` times (module doc) and waits for all; returns the exit
    status."""
    out = out or sys.stdout
    port = port or free_port()
    procs = [subprocess.Popen(command, cwd=cwd, env=process_env(i, processes, port,
                                                               devices_per_process),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(processes)]
    pumps = [threading.Thread(target=_pump, args=(p, i, out), daemon=True)
             for i, p in enumerate(procs)]
    for t in pumps:
        t.start()
    codes = [p.wait() for p in procs]
    for t in pumps:
        t.join()
    return next((c for c in codes if c != 0), 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--devices_per_process", type=int, default=0,
                    help="fake CPU devices per process (0: leave the platform alone)")
    ap.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command or a.processes < 1:
        ap.error("give --processes >= 1 and a command after --")
    sys.exit(launch(command, a.processes, a.devices_per_process, a.port))


if __name__ == "__main__":
    main()

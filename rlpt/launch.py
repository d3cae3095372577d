"""Runs one command as N local processes of one JAX job (a localhost coordinator): the way to
try multi-host code on one machine, and what the multi-process tests use.

    python -m rlpt.launch --processes=2 --devices_per_process=4 -- \
        python -m rlpt.train --config=configs/grpo_arith.py:quick=1 --workdir=runs/mp

Each process gets RLPT_COORDINATOR=localhost:<port>, RLPT_NUM_PROCESSES and RLPT_PROCESS_ID
(read by rlpt.distributed.initialize) and, on CPU, `devices_per_process` fake devices. Output
lines are prefixed with the process id. Exits 0 when all processes succeed. On a real cluster
use the cluster's launcher instead (docs/scaling.md): the same three variables, or
`distributed.cluster=auto`.

Failures and signals. Each process runs in its own session (process group), so the launcher
alone decides when it stops. As soon as one process exits non-zero, the others get SIGTERM
(they would otherwise sit in the distributed start-up timeout) and the launcher exits with that
status. A SIGTERM, SIGINT (Ctrl-C) or SIGHUP to the launcher is forwarded to every process
group, and the launcher exits with 128 + the signal number (143, 130, 129). Either way the
processes get `--grace_s` seconds (default 10) to exit before their groups are SIGKILLed, the
launcher reaps them all before it exits, and it says what it did in one line on stderr, e.g.
`rlpt.launch: SIGTERM: stopped 2 processes`. Once jax.distributed is up, JAX catches SIGTERM
as a preemption notice and keeps running, so a training process usually ends by the SIGKILL;
SIGINT raises KeyboardInterrupt in it. A SIGKILL of the launcher cannot be forwarded: stop the
processes' groups yourself then.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)  # each child leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone


def _stop(procs, sig, grace_s: float) -> int:
    """Sends `sig` to the group of each process still running, waits up to `grace_s` seconds,
    SIGKILLs every group (stragglers, and what the exited ones left behind) and reaps all the
    processes; returns how many were running."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        _signal_group(p, sig)
    deadline = time.monotonic() + grace_s
    while any(p.poll() is None for p in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in procs:
        _signal_group(p, signal.SIGKILL)
    for p in procs:
        p.wait()
    return len(running)


def launch(command, processes: int, devices_per_process: int = 0, port: int = 0,
           cwd=None, out=None, grace_s: float = 10.0, poll_s: float = 0.05) -> int:
    """Starts `command` `processes` times and waits for all; returns 0, the first non-zero exit
    status (negative: killed by that signal), or 128 + a signal the launcher got (module doc)."""
    out = out or sys.stdout
    port = port or free_port()
    received = []
    in_main = threading.current_thread() is threading.main_thread()  # signal.signal needs it
    old = {s: signal.signal(s, lambda sig, _: received.append(sig)) for s in FORWARDED} \
        if in_main else {}
    procs, pumps, status, why, stopping = [], [], 0, None, True
    try:
        for i in range(processes):
            procs.append(subprocess.Popen(
                command, cwd=cwd, env=process_env(i, processes, port, devices_per_process),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True))
            pumps.append(threading.Thread(target=_pump, args=(procs[i], i, out), daemon=True))
            pumps[i].start()
        while True:
            if received:
                status, why = 128 + received[0], signal.Signals(received[0]).name
                break
            codes = [p.poll() for p in procs]
            failed = next((i for i, c in enumerate(codes) if c), None)  # not None, not 0
            if failed is not None:
                status, why = codes[failed], f"process {failed} exited with {codes[failed]}"
                break
            if None not in codes:
                break
            time.sleep(poll_s)
        stopping = status != 0
    finally:  # also on an exception (KeyboardInterrupt where no handler could be installed)
        if stopping:
            n = _stop(procs, received[0] if received else signal.SIGTERM, grace_s)
            print(f"rlpt.launch: {why or 'error'}: stopped {n} process{'es' * (n != 1)}",
                  file=sys.stderr, flush=True)
        for s, handler in old.items():
            signal.signal(s, handler)
    for t in pumps:
        t.join(timeout=grace_s + 1)  # a process outside its group may hold the pipe open
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--devices_per_process", type=int, default=0,
                    help="fake CPU devices per process (0: leave the platform alone)")
    ap.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
    ap.add_argument("--grace_s", type=float, default=10.0,
                    help="seconds the processes get to exit after SIGTERM before SIGKILL")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command or a.processes < 1:
        ap.error("give --processes >= 1 and a command after --")
    status = launch(command, a.processes, a.devices_per_process, a.port, grace_s=a.grace_s)
    sys.exit(128 - status if status < 0 else status)  # killed by signal n: 128 + n, as shells


if __name__ == "__main__":
    main()

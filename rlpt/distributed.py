"""More than one process: JAX's multi-controller runtime (`jax.distributed`), one process per host.

Every process runs the same program on its own devices; together they form one global mesh
(`rlpt.sharding.make_mesh` over `jax.devices()`, all processes' devices). What differs per
process is small and lives here:

- `initialize(cfg)`: `jax.distributed.initialize` from `cfg.distributed` or the environment
  (`RLPT_COORDINATOR`, `RLPT_NUM_PROCESSES`, `RLPT_PROCESS_ID`), before anything touches a
  device. `distributed.cluster="auto"` lets JAX detect the cluster (TPU pod slices, SLURM);
  an explicit coordinator address, process count and id work anywhere (CPU included, with
  gloo collectives). A process that loses a peer exits with an error after
  `distributed.heartbeat_timeout_s` seconds instead of hanging.
- `local_rows(global_shape, sharding)` / `global_array(x, sharding)`: the rows of a global
  batch that live on this process's devices, and the global array assembled from each
  process's rows (`jax.make_array_from_process_local_data`). Data are functions of
  (seed, step), so every process computes the same global batch on the host and keeps its rows.
- `is_main()`: process 0 writes metrics, logs, wandb, tables, plots and summary.json; every
  process takes part in the compiled steps and in orbax checkpoints (orbax coordinates them).
- `barrier(name)`: all processes wait for each other (e.g. after process 0 rewrote metrics).
- `fetch(x)`: a global array as numpy on every process (evaluation results).
"""
import os

import jax
import numpy as np

from rlpt.errors import UserError

ENV = {"coordinator": "RLPT_COORDINATOR", "num_processes": "RLPT_NUM_PROCESSES",
       "process_id": "RLPT_PROCESS_ID"}
DEFAULTS = {"cluster": "", "coordinator": "", "num_processes": 0, "process_id": -1,
            "heartbeat_timeout_s": 100, "init_timeout_s": 300}
_STATE = {"initialized": False}


def settings(dcfg=None) -> dict:
    """`cfg.distributed` over the defaults, with the RLPT_* environment variables on top."""
    s = dict(DEFAULTS, **(dict(dcfg) if dcfg else {}))
    for key, var in ENV.items():
        if os.environ.get(var):
            s[key] = type(DEFAULTS[key])(os.environ[var])
    return s


def validate(dcfg=None) -> dict:
    """Checks the settings; `config distributed.<key>: ...` errors."""
    s = settings(dcfg)
    explicit = [k for k in ("coordinator", "num_processes") if s[k]]
    if s["cluster"] not in ("", "auto"):
        raise UserError(f"config distributed.cluster: {s['cluster']!r}; expected '' or 'auto'")
    if explicit and len(explicit) < 2:
        raise UserError("config distributed: coordinator and num_processes go together "
                        f"(got {explicit[0]} only)")
    if s["num_processes"] and not 0 <= s["process_id"] < s["num_processes"]:
        raise UserError(f"config distributed.process_id: {s['process_id']} is not in "
                        f"[0, num_processes={s['num_processes']})")
    if s["heartbeat_timeout_s"] < 1 or s["init_timeout_s"] < 1:
        raise UserError("config distributed.heartbeat_timeout_s / init_timeout_s: must be >= 1")
    return s


def initialize(dcfg=None) -> bool:
    """Joins the processes of one job (module doc); returns whether this is a multi-process run.
    A single-process config (no coordinator, cluster '') does nothing. Idempotent."""
    s = validate(dcfg)
    if _STATE["initialized"]:
        return jax.process_count() > 1
    if not s["coordinator"] and s["cluster"] != "auto":
        return False
    kw = {"initialization_timeout": int(s["init_timeout_s"]),
          "heartbeat_timeout_seconds": int(s["heartbeat_timeout_s"])}
    if s["coordinator"]:
        kw.update(coordinator_address=s["coordinator"], num_processes=int(s["num_processes"]),
                  process_id=int(s["process_id"]))
        # cross-process collectives of the CPU backend (GPU / TPU backends bring their own)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kw)
    _STATE["initialized"] = True
    return jax.process_count() > 1


def is_main() -> bool:
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """All processes reach this point before any goes on (no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def local_rows(global_rows: int, sharding) -> slice:
    """The contiguous rows [lo, hi) of a batch of `global_rows` rows (leading axis sharded by
    `sharding`) that this process's devices hold."""
    index = sharding.addressable_devices_indices_map((global_rows,))
    spans = sorted({(s[0].start or 0, global_rows if s[0].stop is None else s[0].stop)
                    for s in index.values()})
    lo, hi = spans[0][0], spans[-1][1]
    covered = sum(b - a for a, b in spans)
    if covered != hi - lo:
        raise ValueError(f"the rows of process {jax.process_index()} are not contiguous "
                         f"({spans}); order the mesh's devices by process")
    return slice(lo, hi)


def global_array(x: np.ndarray, sharding):
    """The global array with leading axis sharded by `sharding`, from the full host array `x`
    (the same on every process): each process contributes only its own rows."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    rows = local_rows(x.shape[0], sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(x)[rows], x.shape)


def fetch(x) -> np.ndarray:
    """`x` (a global jax.Array, maybe spanning other processes' devices) as numpy, everywhere."""
    if jax.process_count() == 1 or getattr(x, "is_fully_addressable", True) or \
            getattr(x, "is_fully_replicated", False):
        return np.asarray(x)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

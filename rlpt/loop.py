"""What every training loop shares (RL, SFT, preference, reward model): placing a fresh
TrainState on the mesh, and running a phase's steps with progress, logs, checkpoints and evals.

A phase is keyed by its name: its metrics rows carry `phase`, its checkpoints live under
workdir/ckpt/<phase>, and a resumed phase continues from its restored step.
"""
import os
import sys

import jax
from tqdm import tqdm

from rlpt import sharding
from rlpt.run_io import to_python
from rlpt.state import TrainState


def _progress(total, start, desc):
    return tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, mininterval=1.0,
                file=sys.stdout, disable=os.environ.get("RLPT_NO_PROGRESS") == "1")


def _flush(pending, phase, log, wb, bar):
    rows = []
    for step, m in jax.device_get(pending):
        rows.append(dict(phase=phase, step=int(step), **to_python(m)))
    log.write(rows)
    wb.log(phase, rows)
    last = rows[-1]
    keys = ("reward_mean", "accuracy", "loss") if phase == "rl" else ("loss",)
    bar.set_postfix({k: f"{last[k]:.3f}" for k in keys if k in last})
    pending.clear()


def place_state(state: TrainState, optimizer, mesh) -> TrainState:
    """A fresh (step 0) state on the mesh: params and frozen models with the parameter rules (a
    value head, outside the rules, replicated), the optimizer state initialised from the placed
    params (its moments follow their shardings), the rest replicated."""
    rep = sharding.replicated(mesh)
    put = lambda x: None if x is None else jax.device_put(x, rep)
    params = sharding.place_params(state.params, mesh)
    return state.replace(
        params=params, frozen={k: sharding.place_params(v, mesh) for k, v in state.frozen.items()},
        opt_state=sharding.init_opt_state(optimizer, params, mesh),
        algo_state=put(state.algo_state), step=put(state.step), rng=put(state.rng))


def run_phase(phase, state, step_fn, batch_of, total, iters, cfg, ckpt, log, wb, on_eval=None):
    """Steps `start .. total` of a phase (`iters` per call, batches stacked [K, ...] when K > 1),
    logging every `log_every`, checkpointing every `ckpt_every`, calling `on_eval(step, state)`
    every `eval.every` steps (RL)."""
    start = int(state.step)
    bar, pending = _progress(total, start, phase), []
    for step in range(start, total, iters):
        state, m = step_fn(state, batch_of(step))
        if iters > 1:
            pending.extend((step + i + 1, jax.tree_util.tree_map(lambda x: x[i], m))
                           for i in range(iters))
        else:
            pending.append((step + 1, m))
        bar.update(iters)
        done = step + iters
        if done % cfg.log_every < iters or done == total:
            _flush(pending, phase, log, wb, bar)
        if done % cfg.ckpt_every < iters or done == total:
            ckpt.save(done, state)
        if on_eval is not None and (done % cfg.eval.every < iters or done == total):
            on_eval(done, state)
    bar.close()
    return state

"""What every training loop shares (RL, SFT, preference, reward model): placing a fresh
TrainState on the mesh, and running a phase's steps with progress, logs, checkpoints and evals.

A phase is keyed by its name: its metrics rows carry `phase`, its checkpoints live under
workdir/ckpt/<phase>, and a resumed phase continues from its restored step.
"""
import math
import os
import sys

import jax
from tqdm import tqdm

from rlpt import distributed, sharding
from rlpt.distributed import barrier, is_main
from rlpt.run_io import claimed_workdir, to_python
from rlpt.state import TrainState

NONFINITE_DEFAULTS = {"stop_after": 5, "reward_value": 0.0, "on_reward": "replace"}


class NonFiniteError(RuntimeError):
    """A run stopped because its updates kept going non-finite (or a reward did, with
    `nonfinite.on_reward='fail'`)."""


class NonFiniteMonitor:
    """Reads a phase's metric rows as they are flushed. Every step counts the updates the guarded
    optimizer skipped (`nonfinite_updates`, rlpt.optim.apply_update) and the rewards replaced
    (`reward_nonfinite`, `reward_errors`); after `stop_after` consecutive steps with a skipped
    update (0: never) it raises NonFiniteError naming the steps and the non-finite terms.
    Skipped updates leave the state as it was, so every checkpoint already written is finite.
    Rows are checked when flushed (every log_every steps and before each checkpoint), so the
    stop comes at the first flush after the K-th bad step."""

    def __init__(self, phase, nonfinite=None):
        nf = dict(NONFINITE_DEFAULTS, **(dict(nonfinite) if nonfinite else {}))
        self.phase, self.stop_after = phase, int(nf["stop_after"])
        self.fail_on_reward = nf["on_reward"] == "fail"
        self.run, self.first, self.terms = 0, None, []

    def check(self, rows):
        for r in rows:
            step = r["step"]
            bad_rewards = r.get("reward_nonfinite", 0.0) + r.get("reward_errors", 0.0)
            if self.fail_on_reward and bad_rewards > 0:
                raise NonFiniteError(
                    f"{self.phase} step {step}: {bad_rewards:g} reward(s) were not finite or the "
                    "host reward raised (nonfinite.on_reward='fail'; 'replace' scores them "
                    "nonfinite.reward_value and counts them)")
            if not r.get("nonfinite_updates", 0.0) > 0:
                self.run, self.first, self.terms = 0, None, []
                continue
            self.run += 1
            self.first = step if self.first is None else self.first
            self.terms += [k for k, v in r.items() if isinstance(v, float)
                           and not math.isfinite(v) and k not in self.terms]
            if self.stop_after and self.run >= self.stop_after:
                what = ", ".join(self.terms) or "the optimizer update (loss and gradient finite)"
                raise NonFiniteError(
                    f"{self.phase} steps {self.first}..{step}: {self.run} consecutive steps with "
                    f"non-finite values ({what}); their updates were skipped and no non-finite "
                    "state was checkpointed. Lower the learning rate or fix the term, then "
                    "resume (nonfinite.stop_after=0 keeps skipping instead)")


def _progress(total, start, desc):
    return tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, mininterval=1.0,
                file=sys.stdout,
                disable=os.environ.get("RLPT_NO_PROGRESS") == "1" or not is_main())


def _flush(pending, phase, log, wb, bar, monitor):
    if not pending:
        return
    rows = []
    for step, m in jax.device_get(pending):
        rows.append(dict(phase=phase, step=int(step), **to_python(m)))
    log.write(rows)
    wb.log(phase, rows)
    monitor.check(rows)
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


def run_in_workdir(cfg, workdir: str, validate, body, allow_config_change: bool = False):
    """How every trainer starts: join the job's processes (rlpt.distributed, before anything
    touches a device), `cfg = validate(cfg)`, claim the workdir (rlpt.run_io.claimed_workdir:
    lock, changed-config refusal unless `allow_config_change`, config.json), then return
    `body(cfg, workdir)`."""
    distributed.initialize(cfg.get("distributed"))
    cfg = validate(cfg)
    with claimed_workdir(workdir, cfg, allow_config_change):
        return body(cfg, workdir)


def resume(state: TrainState, ckpt, log, phases) -> TrainState:
    """The phase's state to continue from: its latest checkpoint when one exists, else `state`
    (step 0). Metric rows of `phases` after that step are dropped, also when there was no
    checkpoint yet (a kill before a phase's first checkpoint), so a resumed run never
    duplicates rows."""
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
    for phase in phases:
        log.truncate_after(phase, int(state.step))
    barrier(f"resume {phases[0]}")  # no process reads the rows before process 0 rewrote them
    return state


def run_phase(phase, state, step_fn, batch_of, total, iters, cfg, ckpt, log, wb, on_eval=None):
    """Steps `start .. total` of a phase (`iters` per call, batches stacked [K, ...] when K > 1),
    logging every `log_every`, checkpointing every `ckpt_every` (the rows up to a checkpoint are
    written before it), calling `on_eval(step, state)` every `eval.every` steps (RL). Rows pass
    a NonFiniteMonitor (`cfg.nonfinite`), which stops the phase on repeated non-finite steps."""
    start = int(state.step)
    bar, pending = _progress(total, start, phase), []
    monitor = NonFiniteMonitor(phase, cfg.get("nonfinite"))
    for step in range(start, total, iters):
        state, m = step_fn(state, batch_of(step))
        if iters > 1:
            pending.extend((step + i + 1, jax.tree_util.tree_map(lambda x: x[i], m))
                           for i in range(iters))
        else:
            pending.append((step + 1, m))
        bar.update(iters)
        done = step + iters
        save = done % cfg.ckpt_every < iters or done == total
        if save or done % cfg.log_every < iters:
            _flush(pending, phase, log, wb, bar, monitor)
        if save:
            ckpt.save(done, state)
        if on_eval is not None and (done % cfg.eval.every < iters or done == total):
            on_eval(done, state)
    bar.close()
    return state

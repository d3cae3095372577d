"""The ONE phase loop of every trainer (RL, SFT, preference, reward model; a single run and a
vmapped sweep group alike): placing a fresh TrainState on the mesh, resuming a phase, and running
its steps with progress, per-run metric rows, the non-finite monitor, checkpoints and evals.

A phase drives R >= 1 runs (`Runs`): a single run (`rlpt.train`, R = 1, arrays without a run
axis: it may be sharded over a mesh, use a host reward or several processes) or a sweep group
(`rlpt.sweep`, R runs vmapped in one program, arrays with a leading run axis). A phase is keyed
by its name: its metrics rows carry `phase`, its checkpoints live under <dir>/ckpt/<phase>, and a
resumed phase continues from its restored step.
"""
import dataclasses
import math
import os
import sys
from typing import Any, Dict, List

import jax
import numpy as np
from tqdm import tqdm

from rlpt import distributed, sharding
from rlpt.distributed import barrier, is_main
from rlpt.io.metrics_log import to_python
from rlpt.io.workdir import claimed_workdir, finished_summary
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


@dataclasses.dataclass
class Runs:
    """The runs one phase loop drives: one metrics log per run (R = len(logs)); `run_axis`:
    the state and the step's metrics carry a leading run axis (a vmapped group) or not (one
    run); `wb` a WandbLogger (None: none); `bar` a progress bar shared across phases (None: one
    per phase); `stopped` {run index: message} of runs the non-finite monitor stopped, shared
    across phases (a stopped run in a group keeps its place in the program, its rows are
    written, it is left out of the sweep's means)."""
    logs: List[Any]
    run_axis: bool = False
    wb: Any = None
    bar: Any = None
    stopped: Dict[int, str] = dataclasses.field(default_factory=dict)

    @property
    def R(self) -> int:
        return len(self.logs)


def _progress(total, start, desc):
    return tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, mininterval=1.0,
                file=sys.stdout,
                disable=os.environ.get("RLPT_NO_PROGRESS") == "1" or not is_main())


def _restart_clock(bar):
    """The bar's rate and ETA from now on (keeping its count): the first call of a phase
    includes compiling, which made the ETA of a fresh or resumed phase many times too long."""
    n = bar.n
    bar.reset()
    bar.n = bar.last_print_n = bar.initial = n
    bar.refresh()


def _rows(pending, phase, runs: Runs, K: int) -> List[List[Dict]]:
    """Per run, the metric rows of the pending calls `(first step, metrics)` (K steps each)."""
    got = jax.device_get(pending)
    out = []
    for i in range(runs.R):
        rows = []
        for step, m in got:
            m_i = {k: v[i] for k, v in m.items()} if runs.run_axis else m
            for j in range(K):
                m_ij = {k: v[j] for k, v in m_i.items()} if K > 1 else m_i
                rows.append(dict(phase=phase, step=step + j + 1, **to_python(m_ij)))
        out.append(rows)
    return out


def _flush(pending, phase, runs: Runs, K, bar, monitors):
    if not pending:
        return
    for i, (log, rows) in enumerate(zip(runs.logs, _rows(pending, phase, runs, K))):
        log.write(rows)
        if runs.wb is not None:
            runs.wb.log(phase, rows)
        if i not in runs.stopped:
            try:
                monitors[i].check(rows)
            except NonFiniteError as e:
                runs.stopped[i] = str(e)
                if runs.R > 1:
                    bar.write(f"{phase}: run {i} of {runs.R} ({log.path}) stopped: {e}")
        if i == 0:
            keys = ("reward_mean", "accuracy", "loss") if phase == "rl" else ("loss",)
            bar.set_postfix({k: f"{rows[-1][k]:.3f}" for k in keys if k in rows[-1]})
    pending.clear()


def start_step(state) -> int:
    """The phase step a (restored) state is at; with a run axis, every run's is the same."""
    return int(np.asarray(state.step).reshape(-1)[0])


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


def run_in_workdir(cfg, workdir: str, validate, body, allow_config_change: bool = False,
                   defaults_of=None):
    """How every trainer starts: join the job's processes (rlpt.distributed, before anything
    touches a device), `cfg = validate(cfg)`, claim the workdir (rlpt.io.workdir.claimed_workdir:
    lock, changed-config refusal unless `allow_config_change`, a field newer code added at its
    value in the code's default config `defaults_of(cfg)` being no change; config.json), then
    return `body(cfg, workdir)`."""
    distributed.initialize(cfg.get("distributed"))
    cfg = validate(cfg)
    defaults = defaults_of(cfg) if defaults_of is not None else None
    done = finished_summary(workdir, cfg, defaults)
    if done is not None:
        if is_main():
            print(f"{workdir}: this run has already finished (summary.json; results.md has its "
                  "table); nothing to do. Train again in another workdir, or continue it with a "
                  "larger step count and --allow_config_change", flush=True)
        return done
    with claimed_workdir(workdir, cfg, allow_config_change, defaults):
        return body(cfg, workdir)


def resume(state: TrainState, ckpt, runs: Runs, phases) -> TrainState:
    """The phase's state to continue from: its latest checkpoint when one exists, else `state`
    (step 0). Every run's metric rows of `phases` after that step are dropped, also when there
    was no checkpoint yet (a kill before a phase's first checkpoint), so a resumed run never
    duplicates rows."""
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
        if is_main():
            tqdm.write(f"resuming {phases[0]} from its checkpoint at step {start_step(state)} "
                       f"({ckpt.directory})")
    for log in runs.logs:
        for phase in phases:
            log.truncate_after(phase, start_step(state))
    barrier(f"resume {phases[0]}")  # no process reads the rows before process 0 rewrote them
    return state


def raise_if_stopped(runs: Runs) -> None:
    """A single run ends on the non-finite monitor's stop: raises its NonFiniteError (nothing
    was checkpointed after the bad steps). A sweep reads `runs.stopped` instead."""
    if runs.stopped:
        raise NonFiniteError(next(iter(runs.stopped.values())))


def run_phase(phase, state, step_fn, batch_of, total, iters, cfg, ckpt, runs: Runs,
              on_eval=None, eval_phase="eval"):
    """Steps `start .. total` of a phase for `runs` (`iters` = K steps per call, batches stacked
    [K, ...] when K > 1; metrics [K] or [R, K]), logging every `log_every`, checkpointing every
    `ckpt_every` (the rows up to a checkpoint are written before it), and, with `on_eval(step,
    state, which)`, evaluating every `eval.every` steps and after the last, and at the start of
    the phase for the runs `which` whose log has no evaluation at that step yet (step 0, after
    SFT, or a kill between a checkpoint and its evaluation: the last step's too, whatever
    `eval.every`; evaluation rows have phase `eval_phase`). Rows pass
    a NonFiniteMonitor per run
    (`cfg.nonfinite`); when every run has stopped, the loop ends (the caller reads
    `runs.stopped`). Returns the state."""
    start = start_step(state)
    if start % iters:
        raise ValueError(f"{phase} checkpoint step {start} is not a multiple of the {iters} "
                         "steps per call")
    bar = runs.bar if runs.bar is not None else _progress(total, start, phase)
    monitors = [NonFiniteMonitor(phase, cfg.get("nonfinite")) for _ in range(runs.R)]
    if on_eval is not None and (start % cfg.eval.every == 0 or start == total):
        need = [i for i, log in enumerate(runs.logs)
                if start not in {r["step"] for r in log.read() if r["phase"] == eval_phase}]
        if need:
            on_eval(start, state, need)
    pending = []
    for step in range(start, total, iters):
        state, m = step_fn(state, batch_of(step))
        pending.append((step, m))
        bar.update(iters * runs.R)
        if step == start and runs.bar is None:
            _restart_clock(bar)   # the first call compiled: its time is no rate
        done = step + iters
        save = done % cfg.ckpt_every < iters or done == total
        if save or done % cfg.log_every < iters:
            _flush(pending, phase, runs, iters, bar, monitors)
            if len(runs.stopped) == runs.R:
                break
        if save:
            ckpt.save(done, state)
        if on_eval is not None and (done % cfg.eval.every < iters or done == total):
            on_eval(done, state, list(range(runs.R)))
    if runs.bar is None:
        bar.close()
    return state

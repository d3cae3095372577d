"""One vmappable group of sweep points as ONE compiled program per phase: SFT warm-up, RL and
evaluation each run `jax.vmap` of the trainer's own step with a leading run axis on the state,
the batch and `hp` (R runs -> arrays [R, ...]).

    summaries = run_group(group, sweep_dir, bar)

Host-side prompts are made per run (`task.make_batch(seed, step, n)`, as rlpt.train does) and
stacked; rewards stay on device. The run axis is laid over a 1-D mesh axis `run` of the
largest number of devices that divides R (8 runs on 8 devices: one run per device); a config's
own `cfg.mesh` is not used inside a vmapped group.

Each run computes what `rlpt.train.run` computes for its config: the same initial params
(`build_model`), data and rngs (functions of (seed, step)), the same SFT step
(`rlpt.step.make_sft_step`, vmapped) and fused RL step (`rlpt.step.fused_step`), and the
evaluation of `rlpt.train.evaluate` (rlpt.eval_rollout, vmapped).
A seed's SFT warm-up, the same in every arm, is trained once per sweep (rlpt.sweep_sft_cache).
Writes, per point, points/<name>/{config.json, metrics.jsonl, summary.json}; the group's
stacked state is checkpointed under groups/g<index>/ckpt/<phase> every `ckpt_every` steps,
and a restarted group resumes from there (rows after the restored step are dropped first).
A run whose updates keep going non-finite (rlpt.loop.NonFiniteMonitor) cannot stop alone
inside a program: its guarded updates are skipped, it is marked `stopped` in its summary and
left out of the table's means.
"""
import functools
import os
import time
from typing import Dict, List

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlpt import sweep_sft_cache
from rlpt.config import validate_vocab
from rlpt.eval_rollout import eval_metrics, eval_rewards_fn, eval_rng
from rlpt.loop import NonFiniteError, NonFiniteMonitor
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.run_io import Checkpointer, MetricsLog, write_config, write_json_atomic
from rlpt.state import new_state
from rlpt.step import fused_step, make_sft_step
from rlpt.sweep_points import Group, Point
from rlpt.tasks import sft_batch
from rlpt.train import build_model, build_rl, build_task


def point_dir(sweep_dir: str, p: Point) -> str:
    return os.path.join(sweep_dir, "points", p.name)


def group_dir(sweep_dir: str, g: Group) -> str:
    return os.path.join(sweep_dir, "groups", f"g{g.index:03d}")


def stack(trees):
    """Pytrees of equal structure -> one pytree with a leading run axis (numpy)."""
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def run_mesh(n_runs: int, devices=None) -> Mesh:
    """A 1-D mesh `run` over the largest number of devices that divides `n_runs`."""
    devices = list(jax.devices() if devices is None else devices)
    n = max(d for d in range(1, len(devices) + 1) if n_runs % d == 0)
    return Mesh(np.array(devices[:n]), ("run",))


def vmapped(fn, sh, donate=True):
    """`jit(vmap(fn))` with every input and output leaf's run axis laid over `sh`."""
    return jax.jit(jax.vmap(fn), in_shardings=(sh, sh, sh), out_shardings=(sh, sh),
                   donate_argnums=(0,) if donate else ())


class _Phase:
    """The shared loop of one phase for R runs: steps, per-run rows, checkpoints, evals."""

    def __init__(self, name, cfg, ckpt, logs, bar, stopped):
        self.name, self.cfg, self.ckpt, self.logs, self.bar = name, cfg, ckpt, logs, bar
        self.monitors = [NonFiniteMonitor(name, cfg.get("nonfinite")) for _ in logs]
        self.stopped = stopped  # {run index: message}, shared across phases

    def resume(self, state, phases):
        if self.ckpt.latest_step() is not None:
            state = self.ckpt.restore(state)
        start = int(np.asarray(state.step)[0])
        for log in self.logs:
            for phase in phases:
                log.truncate_after(phase, start)
        return state, start

    def flush(self, pending, K):
        got = jax.device_get(pending)
        for i, log in enumerate(self.logs):
            rows = [dict(phase=self.name, step=step + j + 1,
                         **{k: float(v[i] if K == 1 else v[i][j]) for k, v in m.items()})
                    for step, m in got for j in range(K)]
            log.write(rows)
            if i not in self.stopped:
                try:
                    self.monitors[i].check(rows)
                except NonFiniteError as e:
                    self.stopped[i] = str(e)
                    self.bar.write(f"sweep: run {i} of {self.logs[i].path}: {e}")
        pending.clear()

    def run(self, state, step_fn, batch_of, start, total, K, on_eval=None):
        cfg, pending, R = self.cfg, [], len(self.logs)
        for step in range(start, total, K):
            state, m = step_fn(state, batch_of(step))
            pending.append((step, m))
            self.bar.update(K * R)
            done = step + K
            save = done % cfg.ckpt_every < K or done == total
            if save or done % cfg.log_every < K:
                self.flush(pending, K)
            if save:
                self.ckpt.save(done, state)
            if on_eval is not None and (done % cfg.eval.every < K or done == total):
                on_eval(done, state)
        return state


def make_group_eval(model_cfg, task, cfg):
    """`fn(params [R, ...], seeds, eval_batch) -> [dict per run]`: rlpt.train.evaluate for R
    runs in one program (`jax.vmap` of rlpt.eval_rollout.eval_rewards_fn, each run's rng
    `eval_rng(seed)`)."""
    fn = jax.jit(jax.vmap(eval_rewards_fn(model_cfg, task.reward, cfg), in_axes=(0, 0, None)))

    def evaluate_runs(params, seeds, eval_batch) -> List[Dict[str, float]]:
        rngs = jnp.stack([eval_rng(s) for s in seeds])
        rewards = jax.device_get(fn(params, rngs, eval_batch))
        return [eval_metrics([r[i] for r in rewards], eval_batch, cfg)
                for i in range(len(seeds))]
    return evaluate_runs


def sft_phase(pts, task, model_cfg, params, sh):
    """A group's SFT phase: `(step(state, batch), initial state, batch_of(step))`, arrays with a
    leading run axis laid over `sh` (the vmapped `make_sft_step`, each run's hp and batches)."""
    cfg, put = pts[0].cfg, lambda tree: jax.device_put(tree, sh)
    state = put(stack([new_state(prm, make_optimizer(p.cfg.sft.optim), p.seed)
                       for p, prm in zip(pts, params)]))
    step_fn = vmapped(make_sft_step(model_cfg, make_optimizer(cfg.sft.optim), "solution_mask",
                                    donate=False), sh)
    hp = put(stack([{"optim": optim_hparams(p.cfg.sft.optim)} for p in pts]))
    batch_of = lambda step: put(stack([sft_batch(task, p.seed, step, cfg.sft.batch_size)
                                       for p in pts]))
    return (lambda s, b: step_fn(s, b, hp)), state, batch_of


def rl_phase(pts, task, model_cfg, params, sh):
    """A group's RL phase: `(step(state, batch), initial state, batch_of(step))` as
    `sft_phase`: the vmapped fused step (K = rl.iters_per_call iterations per call, batches
    stacked [R, K, ...] when K > 1) and each run's state, hp and batches from `build_rl`."""
    cfg, put = pts[0].cfg, lambda tree: jax.device_put(tree, sh)
    built = [build_rl(p.cfg, model_cfg, prm, task) for p, prm in zip(pts, params)]
    spec = built[0][0]
    state = put(stack([b[1] for b in built]))
    hp = put(stack([b[2] for b in built]))
    makers = [b[3] for b in built]
    K = cfg.rl.iters_per_call
    if K == 1:
        one = functools.partial(fused_step, spec)
    else:
        def one(s, stacked, h):
            return jax.lax.scan(lambda c, b: fused_step(spec, c, b, h), s, stacked)
    step_fn = vmapped(one, sh)

    def batch_of(step):
        if K == 1:
            return put(stack([mk(step) for mk in makers]))
        return put(stack([stack([mk(s) for s in range(step, step + K)]) for mk in makers]))
    return (lambda s, b: step_fn(s, b, hp)), state, batch_of


def _sft(pts, task, model_cfg, params, gdir, logs, sh, bar, stopped):
    step_fn, state, batch_of = sft_phase(pts, task, model_cfg, params, sh)
    phase = _Phase("sft", pts[0].cfg, Checkpointer(gdir, "sft"), logs, bar, stopped)
    state, start = phase.resume(state, ("sft",))
    state = phase.run(state, step_fn, batch_of, start, pts[0].cfg.sft.steps, 1)
    params = jax.device_get(state.params)   # one transfer; each run's rows sliced on the host
    return [jax.tree_util.tree_map(lambda x: x[i], params) for i in range(len(pts))]


def _rl(pts, task, model_cfg, params, gdir, logs, sh, bar, stopped):
    cfg, R = pts[0].cfg, len(pts)
    step_fn, state, batch_of = rl_phase(pts, task, model_cfg, params, sh)
    phase = _Phase("rl", cfg, Checkpointer(gdir, "rl"), logs, bar, stopped)
    state, start = phase.resume(state, ("rl", "eval"))
    evaluate_runs = make_group_eval(model_cfg, task, cfg)
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    seeds = [p.seed for p in pts]

    def run_eval(step, state, which=range(R)):
        res = evaluate_runs(state.params, seeds, eval_batch)
        for i in which:
            logs[i].write([dict(phase="eval", step=step, **res[i])])
        mean = {k: np.mean([r[k] for r in res]) for k in res[0]}
        bar.write(f"eval @ rl step {step} (mean of {R} runs): "
                  + " ".join(f"{k}={v:.3f}" for k, v in mean.items()))

    if start % cfg.eval.every == 0:   # step 0 (after SFT), or a kill between checkpoint and eval
        need = [i for i, log in enumerate(logs)
                if start not in {r["step"] for r in log.read() if r["phase"] == "eval"}]
        if need:
            run_eval(start, state, need)
    return phase.run(state, step_fn, batch_of, start, cfg.rl.steps, cfg.rl.iters_per_call,
                     on_eval=run_eval)


def run_group(group: Group, sweep_dir: str, bar, devices=None, sft_from=()) -> List[Dict]:
    """Runs (or resumes) a vmappable group (module doc); returns the points' summaries.
    `sft_from`: other sweeps whose SFT caches may supply the warm-ups (rlpt.sweep_sft_cache)."""
    pts, cfg, R = group.points, group.points[0].cfg, len(group.points)
    gdir = group_dir(sweep_dir, group)
    logs = []
    for p in pts:
        wd = point_dir(sweep_dir, p)
        os.makedirs(wd, exist_ok=True)
        write_config(wd, p.cfg)
        logs.append(MetricsLog(os.path.join(wd, "metrics.jsonl")))
    mesh = run_mesh(R, devices)
    sh = NamedSharding(mesh, PartitionSpec("run"))
    task = build_task(cfg)
    built = [build_model(p.cfg) for p in pts]
    model_cfg, params = built[0][0], [b[1] for b in built]
    validate_vocab(cfg, model_cfg.vocab_size,
                   getattr(getattr(task, "tokenizer", None), "vocab_size", 0))
    bar.write(f"sweep: group g{group.index:03d}: {R} runs in one program (vmapped), run axis "
              f"over {mesh.devices.size} {mesh.devices.flat[0].platform} device(s)")
    stopped: Dict[int, str] = {}
    t0 = time.time()
    reused = (sweep_sft_cache.load([sweep_dir, *sft_from], pts, params) if cfg.sft.steps
              else None)
    if reused:   # every run's warm-up was trained before (rlpt.sweep_sft_cache)
        params, sources = reused
        for src, log in zip(sources, logs):
            sweep_sft_cache.copy_sft_rows(src, log)
        names = [sweep_sft_cache.source_name(sweep_dir, src) for src in sources]
        bar.write(f"sweep: group g{group.index:03d}: SFT params of {', '.join(names)} reused")
        bar.update(R * cfg.sft.steps)
    elif cfg.sft.steps:
        params = _sft(pts, task, model_cfg, params, gdir, logs, sh, bar, stopped)
        sweep_sft_cache.save(sweep_dir, pts, params, stopped)
    sft_time = time.time() - t0
    t1 = time.time()
    _rl(pts, task, model_cfg, params, gdir, logs, sh, bar, stopped)
    rl_time = time.time() - t1
    summaries = []
    for i, (p, log) in enumerate(zip(pts, logs)):
        evals = [r for r in log.read() if r["phase"] == "eval"]
        summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
                   "sft_steps": cfg.sft.steps, "group": group.index, "runs_in_program": R,
                   "sft_seconds_group": round(sft_time, 1),
                   "rl_seconds_group_this_session": round(rl_time, 1)}
        if reused:
            summary["sft_reused_from"] = names[i]
        if i in stopped:
            summary["stopped"] = stopped[i]
        write_json_atomic(os.path.join(point_dir(sweep_dir, p), "summary.json"), summary)
        summaries.append(summary)
    return summaries

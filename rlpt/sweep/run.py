"""One vmappable group of sweep points as ONE compiled program per phase: SFT warm-up, RL and
evaluation each run `jax.vmap` of the trainer's own step with a leading run axis on the state,
the batch and `hp` (R runs -> arrays [R, ...]).

    summaries = run_group(group, sweep_dir, bar)

Host-side prompts are made per run (`task.make_batch(seed, step, n)`, as rlpt.train does) and
stacked; rewards stay on device. The run axis is laid over a 1-D mesh axis `run` of the
largest number of devices that divides R (8 runs on 8 devices: one run per device); a config's
own `cfg.mesh` is not used inside a vmapped group.

Each run computes what `rlpt.train.run` computes for its config: the same initial params
(`rlpt.build`), data and rngs (functions of (seed, step)), the same SFT step
(`rlpt.step.sft_step`, vmapped) and fused RL step (`rlpt.step.fused_step`), in the same phase
loop (`rlpt.loop.run_phase` with a run axis: logs, checkpoints, resume, evaluation), and the
evaluation of `rlpt.evaluation.rollout.evaluate` (rlpt.evaluation.rollout, vmapped).
A seed's SFT warm-up, the same in every arm, is trained once per sweep (rlpt.sweep.sft_cache).
Writes, per point, points/<name>/{config.json, metrics.jsonl, summary.json}; the group's
stacked state is checkpointed under groups/g<index>/ckpt/<phase> every `ckpt_every` steps,
and a restarted group resumes from there (rows after the restored step are dropped first).
A run whose updates keep going non-finite (rlpt.loop.NonFiniteMonitor) cannot stop alone
inside a program: its guarded updates are skipped, it is marked `stopped` in its summary and
left out of the table's means; when every run of the group has stopped, the phase ends.
"""
import functools
import os
import time
from typing import Dict, List

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlpt.build import build_model, build_rl, build_sft, build_task
from rlpt.config import validate_vocab
from rlpt.evaluation.rollout import eval_metrics, eval_rewards_fn, eval_rng, eval_seed
from rlpt.evaluation.validation import eval_splits, validation_summary
from rlpt.io.checkpoints import Checkpointer
from rlpt.io.metrics_log import MetricsLog
from rlpt.io.workdir import write_config, write_json_atomic
from rlpt.loop import Runs, resume, run_phase
from rlpt.state import model_params, trained_params
from rlpt.step import fused_step
from rlpt.sweep import sft_cache
from rlpt.sweep.points import Group, Point


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


def make_group_eval(model_cfg, task, cfg):
    """`fn(params [R, ...], seeds, eval_batch) -> [dict per run]`: rlpt.evaluation.rollout.evaluate
    for R runs in one program (`jax.vmap` of rlpt.evaluation.rollout.eval_rewards_fn, each run's rng
    `eval_rng(seed)`, seed = eval_seed of its config)."""
    fn = jax.jit(jax.vmap(eval_rewards_fn(model_cfg, task.reward, cfg), in_axes=(0, 0, None)))

    def evaluate_runs(params, seeds, eval_batch) -> List[Dict[str, float]]:
        rngs = jnp.stack([eval_rng(s) for s in seeds])
        rewards = jax.device_get(fn(params, rngs, eval_batch))
        return [eval_metrics({k: r[i] for k, r in rewards.items()}, eval_batch, cfg)
                for i in range(len(seeds))]
    return evaluate_runs


def sft_phase(pts, task, model_cfg, params, sh):
    """A group's SFT phase: `(step(state, batch), initial state, batch_of(step))`, arrays with a
    leading run axis laid over `sh`: each run's `rlpt.build.build_sft`, stacked, vmapped."""
    put = lambda tree: jax.device_put(tree, sh)
    built = [build_sft(p.cfg, model_cfg, prm, task) for p, prm in zip(pts, params)]
    step_fn = vmapped(built[0][0], sh)
    state, hp = put(stack([b[1] for b in built])), put(stack([b[2] for b in built]))
    makers = [b[3] for b in built]
    batch_of = lambda step: put(stack([mk(step) for mk in makers]))
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


def _sft(pts, task, model_cfg, params, gdir, runs, sh):
    step_fn, state, batch_of = sft_phase(pts, task, model_cfg, params, sh)
    ckpt = Checkpointer(gdir, "sft")
    state = resume(state, ckpt, runs, ("sft",))
    state = run_phase("sft", state, step_fn, batch_of, pts[0].cfg.sft.steps, 1, pts[0].cfg, ckpt,
                      runs)
    # one transfer (LoRA: the adapters merged first); each run's rows sliced on the host
    params = jax.device_get(trained_params(state, model_cfg.lora_scale))
    return [jax.tree_util.tree_map(lambda x: x[i], params) for i in range(len(pts))]


def _rl(pts, task, model_cfg, params, gdir, runs, sh):
    cfg, R = pts[0].cfg, len(pts)
    step_fn, state, batch_of = rl_phase(pts, task, model_cfg, params, sh)
    ckpt = Checkpointer(gdir, "rl")
    state = resume(state, ckpt, runs, ("rl", "eval", "validation"))
    evaluate_runs = make_group_eval(model_cfg, task, cfg)
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    splits = eval_splits(cfg, task, eval_batch)
    seeds = [eval_seed(p.cfg) for p in pts]

    def run_eval(step, state, which):
        params = model_params(state.params, state.frozen)
        res = {phase: evaluate_runs(params, seeds, batch) for phase, batch in splits}
        for i in which:   # one write per run: a step has both rows or neither
            runs.logs[i].write([dict(phase=phase, step=step, **res[phase][i])
                                for phase, _ in splits])
        for phase, _ in splits:
            mean = {k: np.mean([r[k] for r in res[phase]]) for k in res[phase][0]}
            runs.bar.write(f"{phase} @ rl step {step} (mean of {R} runs): "
                           + " ".join(f"{k}={v:.3f}" for k, v in mean.items()))

    return run_phase("rl", state, step_fn, batch_of, cfg.rl.steps, cfg.rl.iters_per_call, cfg,
                     ckpt, runs, on_eval=run_eval)


def run_group(group: Group, sweep_dir: str, bar, devices=None, sft_from=()) -> List[Dict]:
    """Runs (or resumes) a vmappable group (module doc); returns the points' summaries.
    `sft_from`: other sweeps whose SFT caches may supply the warm-ups (rlpt.sweep.sft_cache)."""
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
    runs = Runs(logs, run_axis=True, bar=bar)
    t0 = time.time()
    reused = (sft_cache.load([sweep_dir, *sft_from], pts, params) if cfg.sft.steps
              else None)
    if reused:   # every run's warm-up was trained before (rlpt.sweep.sft_cache)
        params, sources = reused
        for src, log in zip(sources, logs):
            sft_cache.copy_sft_rows(src, log)
        names = [sft_cache.source_name(sweep_dir, src) for src in sources]
        bar.write(f"sweep: group g{group.index:03d}: SFT params of {', '.join(names)} reused")
        bar.update(R * cfg.sft.steps)
    elif cfg.sft.steps:
        params = _sft(pts, task, model_cfg, params, gdir, runs, sh)
        sft_cache.save(sweep_dir, pts, params, runs.stopped)
    sft_time = time.time() - t0
    t1 = time.time()
    _rl(pts, task, model_cfg, params, gdir, runs, sh)
    rl_time = time.time() - t1
    summaries = []
    for i, (p, log) in enumerate(zip(pts, logs)):
        evals = [r for r in log.read() if r["phase"] == "eval"]
        summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
                   "sft_steps": cfg.sft.steps, "group": group.index, "runs_in_program": R,
                   "sft_seconds_group": round(sft_time, 1),
                   "rl_seconds_group_this_session": round(rl_time, 1)}
        summary.update(validation_summary(log.read()))
        if reused:
            summary["sft_reused_from"] = names[i]
        if i in runs.stopped:
            summary["stopped"] = runs.stopped[i]
        write_json_atomic(os.path.join(point_dir(sweep_dir, p), "summary.json"), summary)
        summaries.append(summary)
    return summaries

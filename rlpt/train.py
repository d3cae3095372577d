"""The trainer of one run: supervised warm-up, then RL with the fused step; evaluation,
checkpoints, logs.

    python -m rlpt.train --config=configs/grpo_arith.py:size=tiny --config.optim.lr=3e-4 \
        --workdir=runs/grpo_arith

Config -> update, in the order a newcomer reads it: `rlpt.config.validate` -> `rlpt.build`
(model, task, each phase's step, state, hp and batches) -> `rlpt.loop.run_phase` (the one phase
loop, also a sweep's) -> `rlpt.step` (the compiled step). A preference or reward-model algorithm
(`Algorithm.kind`) is handed to its trainer, rlpt.preference.train, with the same signature.

Phases run in order, each with its own checkpoints under workdir/ckpt/<phase>; a run killed at
any point and restarted with the same command resumes from the last checkpoint of the phase it
was in and reaches the same final parameters and metrics (data and rngs are functions of
(seed, step)). Writes: config.json, metrics.jsonl, wandb/ (offline by default), ckpt/,
summary.json, results.md and curves.png.
"""
import os
import time
from typing import Dict

import jax
import numpy as np
from tqdm import tqdm

from rlpt import distributed, registry, sharding
from rlpt.algorithms.base import check_files
from rlpt.build import build_model, build_rl, build_sft, build_task, host_reward_fn
from rlpt.config import base_config, validate, validate_vocab
from rlpt.evaluation.rollout import evaluate
from rlpt.evaluation.validation import eval_splits, validation_summary
from rlpt.io.checkpoints import Checkpointer
from rlpt.io.metrics_log import MetricsLog, WandbLogger
from rlpt.io.workdir import write_json_atomic
from rlpt.loop import Runs, raise_if_stopped, resume, run_in_workdir, run_phase
from rlpt.models import lora
from rlpt.rewards.judge import judge_ids
from rlpt.state import model_params, trained_params
from rlpt.env_step import make_env_step
from rlpt.envs.multiturn import task_runner
from rlpt.step import make_fused_step, make_split_step


def run_sft(cfg, model_cfg, params, task, mesh, workdir, runs: Runs):
    """The SFT phase of one run (rlpt.build.build_sft in rlpt.loop.run_phase): -> params (the
    full model; with LoRA the trained adapters merged into the base)."""
    step, state, hp, make_batch = build_sft(cfg, model_cfg, params, task, mesh)
    ckpt = Checkpointer(workdir, "sft")
    state = resume(state, ckpt, runs, ("sft",))
    step_fn = jax.jit(step, donate_argnums=(0,))
    state = run_phase("sft", state, lambda s, b: step_fn(s, b, hp),
                      lambda i: sharding.shard_batch(make_batch(i), mesh), cfg.sft.steps, 1, cfg,
                      ckpt, runs)
    raise_if_stopped(runs)
    return trained_params(state, model_cfg.lora_scale)


def warm_up(cfg, model_cfg, params, task, mesh, workdir, runs: Runs, sft_cache=None):
    """The SFT phase of a run, or its cached result: -> params. With a sweep point's
    `sft_cache` (rlpt.sweep.sft_cache.PointCache) a warm-up the sweep trained before is reused
    (its SFT rows copied into this run's log), and one trained here is saved for the others."""
    if not cfg.sft.steps:
        return params
    cached = sft_cache.load(params, runs.logs[0]) if sft_cache else None
    if cached is not None:
        if distributed.is_main():
            print(f"rlpt: SFT params of sweep point {sft_cache.source} reused", flush=True)
        return cached
    params = run_sft(cfg, model_cfg, params, task, mesh, workdir, runs)
    if sft_cache:
        sft_cache.save(params)
    return params


def run_rl(cfg, model_cfg, params, task, mesh, workdir, runs: Runs, eval_batch,
           eval_cache=None):
    """The RL phase of one run (rlpt.build.build_rl in rlpt.loop.run_phase, evaluating every
    eval.every steps): -> (state, seconds). `eval_cache` (rlpt.sweep.eval_cache.EvalCache): the
    evaluation before the first step, shared with the sweep's other points."""
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, task, mesh)
    ckpt = Checkpointer(workdir, "rl")
    state = resume(state, ckpt, runs, ("rl", "eval", "validation"))
    K = cfg.rl.iters_per_call
    if hasattr(task, "environment"):   # a Python environment: rollouts on the host
        step_fn = make_env_step(spec, task_runner(task, spec.model_cfg, spec.scfg))
    elif cfg.reward.kind == "split":
        step_fn = make_split_step(spec, host_reward_fn(task))
    else:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state) if K == 1 else None
        step_fn = make_fused_step(spec, st_sh, iters_per_call=K)
    log = runs.logs[0]
    splits = eval_splits(cfg, task, eval_batch)

    def run_eval(step, state, which):
        shared = eval_cache is not None and step == 0
        rows = eval_cache.load() if shared else None
        if rows is None:
            params = model_params(state.params, state.frozen)
            rows = [dict(phase=phase, step=step, **evaluate(model_cfg, params, task, cfg, batch))
                    for phase, batch in splits]
            if shared:
                eval_cache.save(rows)
        elif distributed.is_main():
            print(f"rlpt: the evaluation before RL of sweep point {eval_cache.source} reused",
                  flush=True)
        log.write(rows)   # one write: a step has both rows or neither (run_phase's resume)
        for row in rows:
            runs.wb.log(row["phase"], [row])
            if distributed.is_main():
                tqdm.write("%s @ rl step %d: %s" % (row["phase"], step, " ".join(
                    f"{k}={v:.3f}" for k, v in row.items() if k not in ("phase", "step"))))

    def batch_of(step):
        if K == 1:
            return sharding.shard_batch(make_batch(step), mesh)
        batches = [make_batch(s) for s in range(step, step + K)]
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}

    t0 = time.time()
    state = run_phase("rl", state, lambda s, b: step_fn(s, b, hp), batch_of, cfg.rl.steps, K,
                      cfg, ckpt, runs, on_eval=run_eval)
    raise_if_stopped(runs)
    return state, time.time() - t0


def run(cfg, workdir: str, allow_config_change: bool = False, sft_cache=None,
        eval_cache=None) -> Dict:
    """Runs (or resumes) the configured experiment in `workdir`; returns the summary. A second
    live run on the same workdir is refused (a lock file); resuming with a config that differs
    from the workdir's config.json is refused with the changed keys unless
    `allow_config_change` (the old config is then kept as config.<time>.json). A preference or
    reward-model algorithm runs in its own trainer (rlpt.preference.train.run). `sft_cache`: a
    sweep point's rlpt.sweep.sft_cache.PointCache (its warm-up shared with the sweep's other
    points); `eval_cache` its rlpt.sweep.eval_cache.EvalCache (the evaluation before RL, shared
    likewise)."""
    if registry.get("algorithm", cfg.algo.name).kind != "policy_gradient":
        from rlpt.preference.train import run as run_preference
        return run_preference(cfg, workdir, allow_config_change, sft_cache)
    return run_in_workdir(cfg, workdir, validate,
                          lambda c, w: _run_locked(c, w, sft_cache, eval_cache),
                          allow_config_change,
                          lambda c: base_config(c.algo.name))


def _run_locked(cfg, workdir: str, sft_cache=None, eval_cache=None) -> Dict:
    check_files(cfg)
    task = build_task(cfg)
    if cfg.reward.kind == "judge":
        judge_ids(cfg.reward.judge, task.tokenizer)  # template/token errors before compiling
    model_cfg, params = build_model(cfg)
    tokenizer = getattr(task, "tokenizer", None)
    validate_vocab(cfg, model_cfg.vocab_size, getattr(tokenizer, "vocab_size", 0))
    mesh = sharding.make_mesh(dict(cfg.mesh))
    log = MetricsLog(os.path.join(workdir, "metrics.jsonl"))
    wb = WandbLogger(cfg, workdir)
    runs = Runs([log], wb=wb)
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    if distributed.is_main():
        trains = (f" (LoRA rank {cfg.lora.rank} on {','.join(cfg.lora.targets)}: the base "
                  "frozen)" if lora.enabled(cfg) else "")
        print(f"rlpt: model {model_cfg.num_params():,} params{trains}, task {cfg.task.name}, algo "
              f"{cfg.algo.name}, devices {jax.device_count()} ({jax.devices()[0].platform}) in "
              f"{jax.process_count()} process(es), workdir {workdir}")
    t0 = time.time()
    params = warm_up(cfg, model_cfg, params, task, mesh, workdir, runs, sft_cache)
    sft_time = time.time() - t0
    state, rl_time = run_rl(cfg, model_cfg, params, task, mesh, workdir, runs, eval_batch,
                            eval_cache)
    wb.finish()
    distributed.barrier("rows written")
    rows = log.read()
    evals = [r for r in rows if r["phase"] == "eval"]
    summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
               "sft_steps": cfg.sft.steps, "sft_seconds": round(sft_time, 1),
               "rl_seconds_this_session": round(rl_time, 1)}
    summary.update(validation_summary(rows))
    if sft_cache and sft_cache.source:
        summary["sft_reused_from"] = sft_cache.source
    if eval_cache and eval_cache.source:
        summary["eval_before_reused_from"] = eval_cache.source
    if distributed.is_main():
        write_json_atomic(os.path.join(workdir, "summary.json"), summary)
        from rlpt.report import write_report
        print(write_report(workdir, rows, cfg))
    return summary


def main(argv=None):
    from rlpt.io.cli import cli_main
    cli_main(run, argv)


if __name__ == "__main__":
    main()

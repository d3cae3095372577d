"""The trainer: supervised warm-up, then RL with the fused step; evaluation, checkpoints, logs.

    python -m rlpt.train --config=configs/grpo_arith.py:size=tiny --config.optim.lr=3e-4 \
        --workdir=runs/grpo_arith

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
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from rlpt import distributed, registry, sharding
from rlpt.algorithms.base import check_files, split_algo_config
from rlpt.config import hparams, validate, validate_vocab
from rlpt.envs.tool_rollout import ToolConfig, evaluate_tool, rollout_kind, tool_rollout
from rlpt.eval_rollout import eval_metrics, eval_rng, eval_settings, jitted_eval_rewards
from rlpt.models import get_model_config, init_params
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.loop import place_state, resume, run_in_workdir, run_phase
from rlpt.rewards.host_callback import host_reward_callback
from rlpt.rewards.judge import build_judge, judge_batch, judge_ids
from rlpt.run_io import (Checkpointer, MetricsLog, WandbLogger,
                         write_json_atomic)
from rlpt.sampling import PLAIN_ROLLOUT, SamplingConfig
from rlpt.state import frozen_copy, new_state
from rlpt.step import StepSpec, make_fused_step, make_sft_step, make_split_step
from rlpt.tasks import sft_batch


def build_model(cfg):
    m = cfg.model
    if m.checkpoint:  # a HF directory, a .gguf file or a llama2.c .bin (rlpt.models.checkpoints)
        from rlpt.models import load_checkpoint
        model_cfg, params = load_checkpoint(m.checkpoint, m.dtype, m.get("checkpoint_format", ""))
        return model_cfg, jax.tree_util.tree_map(jnp.asarray, params)
    extra = {"vocab_size": int(m.vocab_size)} if m.get("vocab_size") else {}
    model_cfg = get_model_config(m.preset, dtype=m.dtype, **extra)
    return model_cfg, init_params(model_cfg, jax.random.PRNGKey(cfg.seed))


def build_task(cfg):
    return registry.get("task", cfg.task.name)(**cfg.task.kwargs.to_dict())


def host_reward_fn(task):
    """The task's pure-Python reference reward over decoded strings (for the host boundary):
    `task.host_reward` when the task has one (tool, GSM8K), else its `reference_reward`."""
    if hasattr(task, "host_reward"):
        return task.host_reward
    from rlpt.rewards.synthetic import completion_text

    def fn(tokens, mask, target, target_len):
        out = np.zeros(tokens.shape[0], np.float32)
        for i in range(tokens.shape[0]):
            text, terminated = completion_text(tokens[i], mask[i])
            example = {"target": target[i], "target_len": target_len[i]}
            out[i] = task.reference_reward(text, example, terminated)
        return out
    return fn


# ------------------------------------------------------------------------------- evaluation

def evaluate(model_cfg, params, task, cfg, eval_batch) -> Dict[str, float]:
    """Greedy accuracy and unbiased pass@k (n = eval.n_samples at eval.temperature), per
    difficulty label, and with `eval.self_correction` the greedy self-correction rates `sc_*`
    (rlpt.eval_rollout, the same program a sweep vmaps); with the tool rollout the call rates
    instead (rlpt.envs.tool_rollout.evaluate_tool)."""
    if rollout_kind(cfg) == "tool":
        return evaluate_tool(model_cfg, params, task, cfg, eval_batch)
    fn = jitted_eval_rewards(model_cfg, task.reward, eval_settings(cfg))
    rewards = fn(params, eval_rng(cfg.seed), eval_batch)
    return eval_metrics([distributed.fetch(r) for r in rewards], eval_batch, cfg)


# ------------------------------------------------------------------------------- phases

def run_sft(cfg, model_cfg, params, task, mesh, workdir, log, wb):
    optimizer = make_optimizer(cfg.sft.optim)
    state = place_state(new_state(params, optimizer, cfg.seed), optimizer, mesh)
    ckpt = Checkpointer(workdir, "sft")
    state = resume(state, ckpt, log, ("sft",))
    # tool demonstrations: teacher forcing over the whole solution, the loss on model tokens
    loss_mask = "solution_loss_mask" if rollout_kind(cfg) == "tool" else "solution_mask"
    step_fn = make_sft_step(model_cfg, optimizer, loss_mask)
    hp = {"optim": optim_hparams(cfg.sft.optim)}
    batch_of = lambda step: sharding.shard_batch(
        sft_batch(task, cfg.seed, step, cfg.sft.batch_size), mesh)
    state = run_phase("sft", state, lambda s, b: step_fn(s, b, hp), batch_of, cfg.sft.steps, 1,
                      cfg, ckpt, log, wb)
    return state.params


def build_rl(cfg, model_cfg, params, task, mesh=None, reward=None, per_prompt_metrics=False):
    """The RL phase of a validated config: `(spec, state, hp, make_batch)`: the static step
    spec, the initial train state (placed on `mesh` when given), the dynamic `hp` and
    `make_batch(step)`. `reward(frozen, tokens, mask, target, target_len) -> (r, aux)` replaces
    the configured one (tests, scripts)."""
    algorithm = registry.get("algorithm", cfg.algo.name)
    s = cfg.sampling
    scfg = SamplingConfig(
        max_new_tokens=s.max_new_tokens, num_samples=s.num_samples, temperature=s.temperature,
        top_k=s.top_k, top_p=s.top_p, greedy=False, stop_tokens=tuple(s.stop_tokens),
        min_new_tokens=s.min_new_tokens, pad_id=s.pad_id, loop=s.loop)
    make_batch, frozen, models = task.make_batch, {}, {}
    kind = cfg.reward.kind
    if kind == "judge":  # the judge reads the prompt from target (rlpt.rewards.judge)
        models["judge"], frozen["judge"], judge = build_judge(cfg, task)
        make_batch = lambda *a: judge_batch(task.make_batch(*a))
    if reward is None:
        reward = judge if kind == "judge" else task_reward(task, kind,
                                                           cfg.nonfinite.reward_value, mesh)
    if algorithm.frozen_models:
        for role, (m_cfg, m_params) in algorithm.frozen_models(cfg, model_cfg, params).items():
            models[role], frozen[role] = m_cfg, m_params
    static_algo, _ = split_algo_config(cfg.algo)
    if static_algo.get("kl_term"):
        frozen["reference"] = frozen_copy(params)
    rollout = (tool_rollout(ToolConfig.from_config(cfg.get("tool")))
               if rollout_kind(cfg) == "tool" else PLAIN_ROLLOUT)
    spec = StepSpec(model_cfg=model_cfg, scfg=scfg, algorithm=algorithm, algo=static_algo,
                    advantage=registry.get("advantage", cfg.algo.advantage),
                    optimizer=make_optimizer(cfg.optim), rollout=rollout, reward=reward,
                    batch_size=cfg.rl.batch_size, ppo_epochs=cfg.rl.ppo_epochs,
                    minibatches=cfg.rl.minibatches, models=models,
                    per_prompt_metrics=per_prompt_metrics,
                    nonfinite_reward=float(cfg.nonfinite.reward_value))
    n_prompts = cfg.rl.batch_size * cfg.algo.oversample
    algo_state = None
    if algorithm.init:
        params, algo_state = algorithm.init(spec, params, make_batch(cfg.seed + 1, 0, n_prompts),
                                            cfg.seed)
    state = new_state(params, spec.optimizer, cfg.seed, frozen, algo_state)
    if mesh is not None:
        state = place_state(state, spec.optimizer, mesh)
    return spec, state, hparams(cfg), lambda step: make_batch(cfg.seed + 1, step, n_prompts)


def task_reward(task, kind: str, on_error: float = 0.0, mesh=None):
    """The step's reward `fn(frozen, tokens, mask, target, target_len)` of a task: its on-device
    reward (`device`), or its host reward through `jax.pure_callback` (`host`; `split` calls
    the host reward between two programs and never this one); a host row that raises scores
    `on_error`; with a `mesh`, each process scores the rows its devices hold."""
    if kind == "device":
        return lambda frozen, *a: task.reward(*a)
    host = host_reward_callback(host_reward_fn(task), on_error, mesh)
    return lambda frozen, *a: host(*a)


def run_rl(cfg, model_cfg, params, task, mesh, workdir, log, wb, eval_batch):
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, task, mesh)
    ckpt = Checkpointer(workdir, "rl")
    state = resume(state, ckpt, log, ("rl", "eval"))
    K = cfg.rl.iters_per_call
    if cfg.reward.kind == "split":
        step_fn = make_split_step(spec, host_reward_fn(task))
    else:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state) if K == 1 else None
        step_fn = make_fused_step(spec, st_sh, iters_per_call=K)
    start, total = int(state.step), cfg.rl.steps
    if start % K:
        raise ValueError(f"checkpoint step {start} is not a multiple of rl.iters_per_call={K}")

    def run_eval(step, state):
        res = evaluate(model_cfg, state.params, task, cfg, eval_batch)
        row = dict(phase="eval", step=step, **res)
        log.write([row])
        wb.log("eval", [row])
        if distributed.is_main():
            tqdm.write("eval @ rl step %d: %s" % (step, " ".join(f"{k}={v:.3f}"
                                                               for k, v in res.items())))

    def batch_of(step):
        if K == 1:
            return sharding.shard_batch(make_batch(step), mesh)
        batches = [make_batch(s) for s in range(step, step + K)]
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}

    done_evals = {r["step"] for r in log.read() if r["phase"] == "eval"}
    if start % cfg.eval.every == 0 and start not in done_evals:
        run_eval(start, state)  # step 0 (after SFT), or a kill between checkpoint and eval
    t0 = time.time()
    state = run_phase("rl", state, lambda s, b: step_fn(s, b, hp), batch_of, total, K, cfg, ckpt,
                      log, wb, on_eval=run_eval)
    return state, time.time() - t0


def run(cfg, workdir: str, allow_config_change: bool = False) -> Dict:
    """Runs (or resumes) the configured experiment in `workdir`; returns the summary. A second
    live run on the same workdir is refused (a lock file); resuming with a config that differs
    from the workdir's config.json is refused with the changed keys unless
    `allow_config_change` (the old config is then kept as config.<time>.json)."""
    return run_in_workdir(cfg, workdir, validate, _run_locked, allow_config_change)


def _run_locked(cfg, workdir: str) -> Dict:
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
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    if distributed.is_main():
        print(f"rlpt: model {model_cfg.num_params():,} params, task {cfg.task.name}, algo "
              f"{cfg.algo.name}, devices {jax.device_count()} ({jax.devices()[0].platform}) in "
              f"{jax.process_count()} process(es), workdir {workdir}")
    t0 = time.time()
    if cfg.sft.steps:
        params = run_sft(cfg, model_cfg, params, task, mesh, workdir, log, wb)
    sft_time = time.time() - t0
    state, rl_time = run_rl(cfg, model_cfg, params, task, mesh, workdir, log, wb, eval_batch)
    wb.finish()
    distributed.barrier("rows written")
    rows = log.read()
    evals = [r for r in rows if r["phase"] == "eval"]
    summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
               "sft_steps": cfg.sft.steps, "sft_seconds": round(sft_time, 1),
               "rl_seconds_this_session": round(rl_time, 1)}
    if distributed.is_main():
        write_json_atomic(os.path.join(workdir, "summary.json"), summary)
        from rlpt.report import write_report
        print(write_report(workdir, rows, cfg))
    return summary


def main(argv=None):
    from rlpt.run_io import cli_main
    cli_main(run, argv)


if __name__ == "__main__":
    main()

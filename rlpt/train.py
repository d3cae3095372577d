"""The trainer: supervised warm-up, then RL with the fused step; evaluation, checkpoints, logs.

    python -m rlpt.train --config=configs/grpo_arith.py:size=tiny --config.optim.lr=3e-4 \
        --workdir=runs/grpo_arith

Phases run in order, each with its own checkpoints under workdir/ckpt/<phase>; a run killed at
any point and restarted with the same command resumes from the last checkpoint of the phase it
was in and reaches the same final parameters and metrics (data and rngs are functions of
(seed, step)). Writes: config.json, metrics.jsonl, wandb/ (offline by default), ckpt/,
summary.json, results.md and curves.png.
"""
import functools
import json
import os
import sys
import time
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from rlpt import registry, sharding
from rlpt.algorithms.kdrl import build_teacher
from rlpt.config import validate
from rlpt.envs.tool_rollout import ToolRLStep, evaluate_tool, make_tool_sft_step, rollout_kind
from rlpt.evaluation import mean_pass_at_k
from rlpt.models import get_model_config, init_params
from rlpt.rewards.judge import build_judge, judge_batch, judge_ids, make_judged_step
from rlpt.rl_step import (RLStep, TrainState, host_reward_callback, init_state, make_fused_step,
                          make_multi_step, make_optimizer, make_sft_step, make_split_step)
from rlpt.run_io import Checkpointer, MetricsLog, WandbLogger, to_python, write_config
from rlpt.sampling import SamplingConfig, sample


def build_model(cfg):
    m = cfg.model
    if m.checkpoint:
        from rlpt.models.loaders import load_hf_checkpoint, load_llama2c
        load = load_hf_checkpoint if m.checkpoint_format == "hf" else load_llama2c
        model_cfg, params = load(m.checkpoint, dtype=m.dtype)
        return model_cfg, jax.tree_util.tree_map(jnp.asarray, params)
    extra = {"vocab_size": int(m.vocab_size)} if m.get("vocab_size") else {}
    model_cfg = get_model_config(m.preset, dtype=m.dtype, **extra)
    return model_cfg, init_params(model_cfg, jax.random.PRNGKey(cfg.seed))


def build_task(cfg):
    import rlpt.tasks.synthetic  # noqa: F401  (registration)
    import rlpt.tasks.tool_task  # noqa: F401
    import rlpt.tasks.gsm8k_task  # noqa: F401
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

@functools.lru_cache(maxsize=8)
def _eval_samplers(model_cfg, max_new, n_samples, temperature, stop_tokens):
    greedy = SamplingConfig(max_new_tokens=max_new, greedy=True, stop_tokens=stop_tokens)
    multi = SamplingConfig(max_new_tokens=max_new, num_samples=n_samples, temperature=temperature,
                           stop_tokens=stop_tokens)
    return (jax.jit(functools.partial(sample, model_cfg, scfg=greedy)),
            jax.jit(functools.partial(sample, model_cfg, scfg=multi)))


def evaluate(model_cfg, params, task, cfg, eval_batch) -> Dict[str, float]:
    """Greedy accuracy and unbiased pass@k (n = eval.n_samples at eval.temperature); with
    the tool rollout also the call rates (rlpt.envs.tool_rollout.evaluate_tool)."""
    if rollout_kind(cfg) == "tool":
        return evaluate_tool(model_cfg, params, task, cfg, eval_batch)
    e, s = cfg.eval, cfg.sampling
    greedy, multi = _eval_samplers(model_cfg, s.max_new_tokens, e.n_samples, e.temperature,
                                   tuple(s.stop_tokens))
    rng = jax.random.PRNGKey(cfg.seed + 777)
    reward = jax.jit(task.reward)
    out = greedy(params, eval_batch["prompt"], eval_batch["prompt_mask"], rng)
    r_g, _ = reward(out.tokens, out.mask, eval_batch["target"], eval_batch["target_len"])
    out = multi(params, eval_batch["prompt"], eval_batch["prompt_mask"], rng)
    rep = lambda x: jnp.repeat(x, e.n_samples, axis=0)
    r_s, _ = reward(out.tokens, out.mask, rep(eval_batch["target"]), rep(eval_batch["target_len"]))
    correct = np.asarray(r_s).reshape(-1, e.n_samples) > 0.5
    res = {"greedy_acc": float(np.mean(np.asarray(r_g) > 0.5))}
    for k in e.ks:
        res[f"pass@{k}"] = mean_pass_at_k(correct, k)
    return res


# ------------------------------------------------------------------------------- phases

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


def _place(state, mesh):
    params = sharding.place_params(state.params, mesh)
    ref = sharding.place_params(state.ref_params, mesh)
    rep = sharding.replicated(mesh)
    put = lambda x, sh: None if x is None else jax.device_put(x, sh)  # algorithm extras
    teacher = sharding.place_params(state.teacher_params, mesh)
    return state.replace(params=params, ref_params=ref, step=jax.device_put(state.step, rep),
                         rng=jax.device_put(state.rng, rep), teacher_params=teacher,
                         value_params=put(state.value_params, rep),
                         algo_state=put(state.algo_state, rep))


def run_sft(cfg, model_cfg, params, task, mesh, workdir, log, wb):
    optimizer = make_optimizer(cfg.sft.optim)
    state = _place(init_state(params, optimizer, cfg.seed, with_ref=False), mesh)
    state = state.replace(opt_state=sharding.init_opt_state(optimizer, state.params, mesh))
    ckpt = Checkpointer(workdir, "sft")
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
        log.truncate_after("sft", int(state.step))
    tool = rollout_kind(cfg) == "tool"  # tool demos: loss on model tokens only
    step_fn = (make_tool_sft_step if tool else make_sft_step)(model_cfg, optimizer)
    start, total = int(state.step), cfg.sft.steps
    bar, pending = _progress(total, start, "sft"), []
    for step in range(start, total):
        batch = sharding.shard_batch(task.make_batch(cfg.seed, step, cfg.sft.batch_size), mesh)
        state, m = step_fn(state, batch)
        pending.append((step + 1, m))
        bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == total:
            _flush(pending, "sft", log, wb, bar)
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == total:
            ckpt.save(step + 1, state)
    bar.close()
    return state.params


def run_rl(cfg, model_cfg, params, task, mesh, workdir, log, wb, eval_batch):
    optimizer = make_optimizer(cfg.optim)
    teacher_cfg, teacher_params = build_teacher(cfg, model_cfg, params)  # KDRL only
    step_cls = ToolRLStep if rollout_kind(cfg) == "tool" else RLStep
    rl = step_cls(model_cfg, cfg, optimizer, None, teacher_cfg=teacher_cfg)
    kind, K = cfg.reward.kind, cfg.rl.iters_per_call
    make_batch = task.make_batch
    if kind == "judge":  # the judge reads the prompt from target (rlpt.rewards.judge)
        judge = build_judge(cfg, task, mesh)
        make_batch = lambda *a: judge_batch(task.make_batch(*a))
    n_prompts = rl.prompts_per_step  # batch_size, times algo.oversample (DAPO)
    state = rl.init_state(params, cfg.seed, teacher_params,
                          example_batch=make_batch(cfg.seed + 1, 0, n_prompts))
    state = _place(state, mesh)
    state = state.replace(opt_state=sharding.init_opt_state(optimizer, rl.trainable(state), mesh))
    ckpt = Checkpointer(workdir, "rl")
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
        log.truncate_after("rl", int(state.step))
        log.truncate_after("eval", int(state.step))
    if kind == "device":
        rl.reward_fn = task.reward
    elif kind != "judge":
        rl.reward_fn = host_reward_callback(host_reward_fn(task))
    if kind == "judge":
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state) if K == 1 else None
        step_fn = make_judged_step(rl, judge, K, st_sh)
    elif kind == "split":
        step_fn = make_split_step(rl, host_reward_fn(task))
    elif K > 1:
        step_fn = make_multi_step(rl, K)
    else:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state)
        step_fn = make_fused_step(rl, st_sh, None)
    start, total = int(state.step), cfg.rl.steps
    if start % K:
        raise ValueError(f"checkpoint step {start} is not a multiple of rl.iters_per_call={K}")

    def run_eval(step):
        res = evaluate(model_cfg, state.params, task, cfg, eval_batch)
        row = dict(phase="eval", step=step, **res)
        log.write([row])
        wb.log("eval", [row])
        tqdm.write("eval @ rl step %d: %s" % (step, " ".join(f"{k}={v:.3f}" for k, v in res.items())))

    done_evals = {r["step"] for r in log.read() if r["phase"] == "eval"}
    if start % cfg.eval.every == 0 and start not in done_evals:
        run_eval(start)  # step 0 (after SFT), or a kill between checkpoint and eval
    bar, pending = _progress(total, start, "rl"), []
    t0 = time.time()
    for step in range(start, total, K):
        batches = [make_batch(cfg.seed + 1, s, n_prompts) for s in range(step, step + K)]
        if K > 1:
            batch = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
            state, ms = step_fn(state, batch)
            pending.extend((step + i + 1, jax.tree_util.tree_map(lambda x: x[i], ms))
                           for i in range(K))
        else:
            state, m = step_fn(state, sharding.shard_batch(batches[0], mesh))
            pending.append((step + 1, m))
        bar.update(K)
        done = step + K
        if done % cfg.log_every < K or done == total:
            _flush(pending, "rl", log, wb, bar)
        if done % cfg.ckpt_every < K or done == total:
            ckpt.save(done, state)
        if done % cfg.eval.every < K or done == total:
            run_eval(done)
    bar.close()
    return state, time.time() - t0


def run(cfg, workdir: str) -> Dict:
    """Runs (or resumes) the configured experiment in `workdir`; returns the summary."""
    cfg = validate(cfg)
    write_config(workdir, cfg)
    task = build_task(cfg)
    if cfg.reward.kind == "judge":
        judge_ids(cfg.reward.judge, task.tokenizer)  # template/token errors before compiling
    model_cfg, params = build_model(cfg)
    mesh = sharding.make_mesh(dict(cfg.mesh))
    log = MetricsLog(os.path.join(workdir, "metrics.jsonl"))
    wb = WandbLogger(cfg, workdir)
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    print(f"rlpt: model {model_cfg.num_params():,} params, task {cfg.task.name}, "
          f"algo {cfg.algo.name}, devices {jax.device_count()} ({jax.devices()[0].platform}), "
          f"workdir {workdir}")
    t0 = time.time()
    if cfg.sft.steps:
        params = run_sft(cfg, model_cfg, params, task, mesh, workdir, log, wb)
    sft_time = time.time() - t0
    state, rl_time = run_rl(cfg, model_cfg, params, task, mesh, workdir, log, wb, eval_batch)
    wb.finish()
    rows = log.read()
    evals = [r for r in rows if r["phase"] == "eval"]
    summary = {"after_sft": evals[0], "after_rl": evals[-1], "rl_steps": cfg.rl.steps,
               "sft_steps": cfg.sft.steps, "sft_seconds": round(sft_time, 1),
               "rl_seconds_this_session": round(rl_time, 1)}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    from rlpt.report import write_report
    print(write_report(workdir, rows, cfg))
    return summary


def main(argv=None):
    from rlpt.run_io import cli_main
    cli_main(run, argv)


if __name__ == "__main__":
    main()

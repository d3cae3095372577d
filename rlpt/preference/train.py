"""Preference optimisation and reward-model training from one config, same conventions as
rlpt.train (resolved config.json, metrics.jsonl, orbax checkpoints per phase with exact resume,
progress bars, summary.json + results.md) and the same machinery: the state is
rlpt.state.TrainState, placed by rlpt.loop.place_state, and every phase runs in
rlpt.loop.run_phase.

    python -m rlpt.preference.train --config=configs/dpo_arith.py:algo=dpo --workdir=runs/dpo
    python -m rlpt.preference.train --config=configs/rm_arith.py:kind=bt --workdir=runs/rm_bt

Phases, each checkpointed under workdir/ckpt/<phase>:
  sft    supervised warm-up on the task's solutions (rlpt.train.run_sft, the RL trainer's own)
  guide  pre_dpo only: the guide, DPO or SimPO from the SFT model (arXiv 2504.15843)
  rm     reward_model mode, or drpo with g = "reward_model": the reward model
  pref   policy mode: the preference step, from the SFT model (pre_dpo: ref := guide)
Evaluation rows (phase "<phase>_eval"): policy -> greedy accuracy / pass@k on the task
(rlpt.train.evaluate) and held-out pair metrics (`pair_acc`: implicit-reward margin > 0);
reward model -> held-out pairwise accuracy `rm_acc` (ties count 0).
"""
import os
import time
from typing import Dict

import jax
import jax.numpy as jnp
from tqdm import tqdm

from rlpt import distributed, sharding
from rlpt.loop import place_state, resume, run_in_workdir, run_phase
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.preference.config import algo_config, validate
from rlpt.preference.reward_model import init_reward_model
from rlpt.preference.reward_model_step import SAMPLING_KINDS, RewardModelStep
from rlpt.preference.step import PreferenceStep, fresh_state, jit_step
from rlpt.run_io import (Checkpointer, MetricsLog, WandbLogger,
                         write_json_atomic)
from rlpt.tasks.synthetic_pairs import JsonlPairs, SyntheticPairs
from rlpt.train import build_model, build_task, evaluate, run_sft

EVAL_SEED = 10_000


def train_phase(name, step_obj, state, batch_fn, steps, hp, cfg, ctx, eval_fn=None):
    """Runs (or resumes) `steps` updates of `step_obj(state, batch, hp)` from the fresh `state`
    in rlpt.loop.run_phase (rows of phase `name`); returns the final state.

    `batch_fn(step)` is deterministic, so a resumed phase reproduces the uninterrupted one.
    `eval_fn(params) -> dict` runs at step 0, every eval.every and at the end (rows of phase
    `<name>_eval`).
    """
    mesh, log, wb = ctx["mesh"], ctx["log"], ctx["wb"]
    state = place_state(state, step_obj.optimizer, mesh)
    ckpt = Checkpointer(ctx["workdir"], name)
    state = resume(state, ckpt, log, (name, f"{name}_eval"))
    start = int(state.step)
    step_fn = jit_step(step_obj, state, batch_fn(0), mesh)

    def on_eval(step, state):
        row = dict(phase=f"{name}_eval", step=step, **eval_fn(state.params))
        log.write([row])
        wb.log(row["phase"], [row])
        if distributed.is_main():
            tqdm.write(f"eval @ {name} step {step}: " + " ".join(
                f"{k}={v:.3f}" for k, v in row.items() if k not in ("phase", "step")))

    if eval_fn is not None:
        done = {r["step"] for r in log.read() if r["phase"] == f"{name}_eval"}
        if start % cfg.eval.every == 0 and start not in done:
            on_eval(start, state)
    batch_of = lambda step: sharding.shard_batch(batch_fn(step), mesh)
    return run_phase(name, state, lambda s, b: step_fn(s, b, hp), batch_of, steps, 1, cfg, ckpt,
                     log, wb, on_eval=on_eval if eval_fn is not None else None)


# ------------------------------------------------------------------------------- builders

def pair_source(cfg, task):
    p = cfg.pref
    if p.source == "jsonl":
        return JsonlPairs(p.jsonl_path, task.tokenizer, p.max_prompt_len, p.max_response_len,
                          n_eval=p.jsonl_eval_pairs)
    return SyntheticPairs(task)


def rm_step(cfg, model_cfg, task) -> RewardModelStep:
    """The reward-model step of `cfg.rm` (its policy for vrpo / rlsf has `model_cfg` too)."""
    return RewardModelStep(model_cfg, cfg.rm, make_optimizer(cfg.rm.optim), task.reward,
                           model_cfg, cfg.sampling)


def rm_state(cfg, model_cfg, step, sft_params):
    """Initial RM state: backbone from the SFT model (rm.init="sft") or random, plus a value
    head; the policy (for vrpo / rlsf sampling) the frozen model "policy"."""
    r = cfg.rm
    rm_params = init_reward_model(model_cfg, jax.random.PRNGKey(cfg.seed + 1),
                                  sft_params if r.init == "sft" else None)
    policy = sft_params if r.kind in SAMPLING_KINDS else None
    return fresh_state(rm_params, step.optimizer, cfg.seed + 1, policy=policy)


def train_reward_model(cfg, model_cfg, sft_params, task, ctx):
    """The `rm` phase: returns the RM params."""
    r = cfg.rm
    step = rm_step(cfg, model_cfg, task)
    state = rm_state(cfg, model_cfg, step, sft_params)
    src = SyntheticPairs(task)
    held = src.make_groups(EVAL_SEED + 1, 0, r.eval_prompts, r.group_size)
    acc = jax.jit(step.eval_accuracy)
    eval_fn = lambda params: {k: float(v) for k, v in acc(params, held).items()}
    batch_fn = lambda s: src.make_groups(cfg.seed + 2, s, r.batch_size, r.group_size)
    hp = {"optim": optim_hparams(r.optim)}
    return train_phase("rm", step, state, batch_fn, r.steps, hp, cfg, ctx, eval_fn).params


def policy_step(cfg, model_cfg, task, rm_model_cfg=None) -> PreferenceStep:
    """The preference step of `cfg.algo` (rm_model_cfg: DRPO's reward model, g="reward_model")."""
    return PreferenceStep(model_cfg, cfg.algo, make_optimizer(cfg.optim), cfg.sampling,
                          task.reward, rm_model_cfg)


def policy_state(cfg, step, params, ref, rm=None):
    """Initial policy state; frozen models: "reference" `ref` when the loss has one,
    "generator" (a copy of `params`) for online DPO, "reward_model" `rm` for DRPO with an RM."""
    gen = params if step.name == "online_dpo" else None
    return fresh_state(params, step.optimizer, cfg.seed, reference=ref if step.need_ref else None,
                       generator=gen, reward_model=rm)


def train_policy(cfg, model_cfg, sft_params, task, ctx, eval_batch):
    """guide (pre_dpo) / rm (drpo with an RM) / pref phases: returns the final policy params."""
    a = cfg.algo
    src = pair_source(cfg, task)
    batch_fn = lambda s: src.make_batch(cfg.seed + 3, s, cfg.pref.batch_size)
    held = (src.eval_batch() if cfg.pref.source == "jsonl"
            else src.make_batch(EVAL_SEED + 2, 0, cfg.pref.eval_pairs))
    hp = {"optim": optim_hparams(cfg.optim)}
    ref, rm, rm_cfg = sft_params, None, None
    if a.name == "pre_dpo":
        guide = PreferenceStep(model_cfg, guide_algo(cfg), make_optimizer(cfg.optim))
        steps = cfg.pref.steps if a.guide_steps < 0 else a.guide_steps
        state = policy_state(cfg, guide, sft_params, sft_params)
        ref = train_phase("guide", guide, state, batch_fn, steps, hp, cfg, ctx).params
    if a.name == "drpo" and a.g == "reward_model":
        rm, rm_cfg = train_reward_model(cfg, model_cfg, sft_params, task, ctx), model_cfg
    step = policy_step(cfg, model_cfg, task, rm_cfg)
    state = policy_state(cfg, step, sft_params, ref, rm)
    pair_metrics = jax.jit(step.eval_metrics)
    ref_eval = ref if step.need_ref or a.name == "drpo" else sft_params

    def eval_fn(params):
        res = {} if eval_batch is None else evaluate(model_cfg, params, task, cfg, eval_batch)
        m = pair_metrics(params, ref_eval, held)
        return dict(res, pair_acc=float(m["accuracy"]), pair_loss=float(m["loss"]))

    return train_phase("pref", step, state, batch_fn, cfg.pref.steps, hp, cfg, ctx,
                       eval_fn).params


def guide_algo(cfg):
    """The guide's loss config: `algo.guide_loss` defaults (DPO with the run's beta)."""
    g = algo_config(cfg.algo.guide_loss)
    if cfg.algo.guide_loss == "dpo":
        g.beta = cfg.algo.beta
    return g


# ------------------------------------------------------------------------------- run

def run(cfg, workdir: str, allow_config_change: bool = False) -> Dict:
    """Runs (or resumes) the configured experiment in `workdir`; returns the summary. As
    rlpt.train.run: a lock against a second live run, a changed config refused unless
    `allow_config_change`."""
    return run_in_workdir(cfg, workdir, validate, _run_locked, allow_config_change)


def _run_locked(cfg, workdir: str) -> Dict:
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    mesh = sharding.make_mesh(dict(cfg.mesh))
    log = MetricsLog(os.path.join(workdir, "metrics.jsonl"))
    wb = WandbLogger(cfg, workdir)
    ctx = dict(mesh=mesh, log=log, wb=wb, workdir=workdir)
    what = cfg.algo.name if cfg.mode == "policy" else f"reward model {cfg.rm.kind}"
    if distributed.is_main():
        print(f"rlpt.preference.train: model {model_cfg.num_params():,} params, task "
              f"{cfg.task.name}, {what}, devices {jax.device_count()} "
              f"({jax.devices()[0].platform}) in {jax.process_count()} process(es), "
              f"workdir {workdir}")
    t0 = time.time()
    if cfg.sft.steps:
        params = run_sft(cfg, model_cfg, params, task, mesh, workdir, log, wb)
    params = jax.tree_util.tree_map(jnp.array, params)
    t_sft = time.time() - t0
    if cfg.mode == "reward_model":
        train_reward_model(cfg, model_cfg, params, task, ctx)
        main = "rm"
    else:
        eval_batch = None  # task evaluation needs the task's prompts; eval.n_prompts=0 skips it
        if cfg.pref.source == "synthetic" and cfg.eval.n_prompts > 0:
            eval_batch = task.eval_set(cfg.eval.n_prompts)
        train_policy(cfg, model_cfg, params, task, ctx, eval_batch)
        main = "pref"
    wb.finish()
    distributed.barrier("rows written")
    evals = [r for r in log.read() if r["phase"] == f"{main}_eval"]
    strip = lambda r: {k: v for k, v in r.items() if k != "phase"}
    summary = {"mode": cfg.mode, "algo": what, "initial": strip(evals[0]),
               "final": strip(evals[-1]), "sft_steps": cfg.sft.steps,
               "sft_seconds": round(t_sft, 1),
               "seconds_this_session": round(time.time() - t0, 1)}
    if distributed.is_main():
        write_json_atomic(os.path.join(workdir, "summary.json"), summary)
        table = results_table(evals, main)
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(f"# {what} on {cfg.task.name} (seed {cfg.seed})\n\n{table}\n")
        print(table + f"\n(table: {workdir}/results.md, summary: {workdir}/summary.json)")
    return summary


def results_table(evals, phase) -> str:
    keys = [k for k in evals[0] if k not in ("phase", "step")]
    lines = [f"| checkpoint | {phase} step | " + " | ".join(keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for name, r in (("start", evals[0]), ("end", evals[-1])):
        lines.append(f"| {name} | {r['step']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None):
    from rlpt.run_io import cli_main
    cli_main(run, argv)


if __name__ == "__main__":
    main()

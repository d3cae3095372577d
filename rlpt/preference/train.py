"""Preference optimisation and reward-model training from one config, same conventions as
rlpt.train (resolved config.json, metrics.jsonl, orbax checkpoints per phase with exact resume,
progress bars, summary.json + results.md) and the same machinery: the state is
rlpt.state.TrainState, placed by rlpt.loop.place_state, and every phase runs in
rlpt.loop.run_phase. `run(cfg, workdir, allow_config_change)` has rlpt.train.run's signature:
`python -m rlpt.train` hands it every config whose `algo.name` is a preference or reward-model
algorithm; `python -m rlpt.preference.train` is the same entry point under its own name.

    python -m rlpt.train --config=configs/dpo_arith.py:algo=dpo --workdir=runs/dpo
    python -m rlpt.preference.train --config=configs/rm_arith.py:kind=bt --workdir=runs/rm_bt

Phases, each checkpointed under workdir/ckpt/<phase>:
  sft    supervised warm-up on the task's solutions (rlpt.train.warm_up, the RL trainer's own)
  ...    what the algorithm's `models(cfg, trainer)` hook runs first (`Trainer`): pre_dpo's
         "guide" (DPO or SimPO from the SFT model, arXiv 2504.15843), drpo's "rm" (g =
         "reward_model")
  rm     reward_model mode: the reward model of `rm.kind`
  pref   policy mode: the preference step, from the SFT model (pre_dpo: ref := guide; with
         `pref.reference="init"` the reference is the model before SFT, a deliberately wrong
         one for robustness experiments; refused, after the hook ran, for an algorithm whose
         `models` hook supplies its own reference)
Evaluation rows (phase "<phase>_eval"): policy -> greedy accuracy / pass@k on the task
(rlpt.evaluation.rollout.evaluate) and held-out pair metrics (`pair_acc`: implicit-reward
margin > 0 against the run's reference; `policy_pair_acc`: the policy's own sequence log-prob of
the chosen response above the rejected one's, comparable across references); reward model ->
held-out pairwise accuracy `rm_acc` (ties count 0). With `eval.validation_prompts` > 0 a policy
run also evaluates the validation prompts (rows of phase "validation", summary
`validation_after_sft` / `validation_after_rl`: its first and last; rlpt.evaluation.validation).
"""
import os
import time
from typing import Dict

import jax
import jax.numpy as jnp
from tqdm import tqdm

from rlpt import distributed, sharding
from rlpt.errors import UserError
from rlpt.io.checkpoints import Checkpointer
from rlpt.io.metrics_log import MetricsLog, WandbLogger
from rlpt.io.workdir import write_json_atomic
from rlpt.loop import Runs, place_state, raise_if_stopped, resume, run_in_workdir, run_phase
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.preference.config import (algo_config, algo_hparams, default_config, hparams,
                                    preference_algorithm, rm_hparams, validate)
from rlpt.preference.reward_model import init_reward_model
from rlpt.preference.reward_model_step import RewardModelStep
from rlpt.preference.step import PreferenceStep, fresh_state, hook_of, jit_step
from rlpt.tasks.label_noise import flip_group_scores, flip_pairs
from rlpt.tasks.synthetic_pairs import JsonlPairs, SyntheticPairs
from rlpt.build import build_model, build_task, lora_params
from rlpt.evaluation.rollout import evaluate
from rlpt.evaluation.validation import eval_splits, validation_summary
from rlpt.models import lora
from rlpt.models.transformer import compute_dtype
from rlpt.state import model_params, trained_params
from rlpt.train import warm_up

EVAL_SEED = 10_000


def train_phase(name, step_obj, state, batch_fn, steps, hp, cfg, ctx, eval_fn=None,
                val_fn=None):
    """Runs (or resumes) `steps` updates of `step_obj(state, batch, hp)` from the fresh `state`
    in rlpt.loop.run_phase (rows of phase `name`); returns the final state.

    `batch_fn(step)` is deterministic, so a resumed phase reproduces the uninterrupted one.
    `eval_fn(params) -> dict` runs at step 0, every eval.every and at the end (rows of phase
    `<name>_eval`) on the model's parameters (with LoRA the adapters attached to the base);
    `val_fn(params) -> dict`, when given, beside it on the validation prompts (rows of phase
    `validation`: rlpt.evaluation.validation).
    """
    mesh, runs = ctx["mesh"], ctx["runs"]
    state = place_state(state, step_obj.optimizer, mesh)
    ckpt = Checkpointer(ctx["workdir"], name)
    state = resume(state, ckpt, runs, (name, f"{name}_eval")
                   + (("validation",) if val_fn is not None else ()))
    step_fn = jit_step(step_obj, state, batch_fn(0), mesh)

    def on_eval(step, state, which):
        params = model_params(state.params, state.frozen)
        rows = [dict(phase=f"{name}_eval", step=step, **eval_fn(params))]
        if val_fn is not None:
            rows.append(dict(phase="validation", step=step, **val_fn(params)))
        runs.logs[0].write(rows)   # one write: a step has all its rows or none
        for row in rows:
            runs.wb.log(row["phase"], [row])
            if distributed.is_main():
                tqdm.write(f"{row['phase']} @ {name} step {step}: " + " ".join(
                    f"{k}={v:.3f}" for k, v in row.items() if k not in ("phase", "step")))

    batch_of = lambda step: sharding.shard_batch(batch_fn(step), mesh)
    state = run_phase(name, state, lambda s, b: step_fn(s, b, hp), batch_of, steps, 1, cfg, ckpt,
                      runs, on_eval=on_eval if eval_fn is not None else None,
                      eval_phase=f"{name}_eval")
    raise_if_stopped(runs)
    return state


# ------------------------------------------------------------------------------- builders

def pair_source(cfg, task):
    p = cfg.pref
    if p.source == "jsonl":
        return JsonlPairs(p.jsonl_path, task.tokenizer, p.max_prompt_len, p.max_response_len,
                          n_eval=p.jsonl_eval_pairs)
    return SyntheticPairs(task)


def rm_step(cfg, model_cfg, task) -> RewardModelStep:
    """The reward-model step of `cfg.rm` (its policy, for kinds that sample, has `model_cfg`)."""
    return RewardModelStep(model_cfg, cfg.rm, make_optimizer(cfg.rm.optim), task.reward,
                           model_cfg, cfg.sampling)


def rm_state(cfg, model_cfg, step, sft_params):
    """Initial RM state: backbone from the SFT model (rm.init="sft") or random, plus a value
    head; for kinds that sample, the policy (the SFT model) is the frozen model "policy". With
    LoRA the backbone's adapters and the head train, the backbone is `frozen["base"]`."""
    r = cfg.rm
    rm_params = init_reward_model(model_cfg, jax.random.PRNGKey(cfg.seed + 1),
                                  sft_params if r.init == "sft" else None)
    policy = sft_params if step.samples_policy else None
    rm_params, base = lora_params(cfg, model_cfg, rm_params, trainable=("value_head",))
    return fresh_state(rm_params, step.optimizer, cfg.seed + 1, policy=policy, **base)


def train_reward_model(cfg, model_cfg, sft_params, task, ctx):
    """The `rm` phase: returns the RM params (with LoRA merged)."""
    r = cfg.rm
    step = rm_step(cfg, model_cfg, task)
    state = rm_state(cfg, model_cfg, step, sft_params)
    src = SyntheticPairs(task)
    held = src.make_groups(EVAL_SEED + 1, 0, r.eval_prompts, r.group_size)
    acc = jax.jit(step.eval_accuracy)
    eval_fn = lambda params: {k: float(v) for k, v in acc(params, held).items()}
    batch_fn = lambda s: flip_group_scores(src.make_groups(cfg.seed + 2, s, r.batch_size,
                                                           r.group_size),
                                           r.get("flip_rate", 0.0), cfg.seed + 2, s)
    state = train_phase("rm", step, state, batch_fn, r.steps, rm_hparams(cfg), cfg, ctx, eval_fn)
    return trained_params(state, model_cfg.lora_scale)


def policy_step(cfg, model_cfg, task, rm_model_cfg=None, algo=None) -> PreferenceStep:
    """The preference step of `algo` (default `cfg.algo`); rm_model_cfg: the config of a frozen
    "reward_model" (DRPO with g="reward_model")."""
    return PreferenceStep(model_cfg, cfg.algo if algo is None else algo,
                          make_optimizer(cfg.optim), cfg.sampling, task.reward, rm_model_cfg)


def policy_state(cfg, step, params, ref, rm=None):
    """Initial policy state with the frozen models the step reads (`step.roles`): "reference"
    `ref`, "generator" (a copy of the trainable params), "reward_model" `rm`. With LoRA the
    adapters train on `frozen["base"]` = `params`; when `ref` is `params` itself (the SFT model)
    the base is the reference and no copy is made (rlpt.state.reference_params)."""
    trainable, base = lora_params(cfg, step.model_cfg, params)
    base_is_ref = bool(base) and ref is params
    roles = [r for r in step.roles if not (r == "reference" and base_is_ref)]
    available = {"reference": ref, "generator": trainable, "reward_model": rm}
    missing = [r for r in roles if available.get(r) is None]
    if missing:
        raise ValueError(f"{step.algo.name} reads the frozen model(s) {missing}: none given")
    return fresh_state(trainable, step.optimizer, cfg.seed, **{r: available[r] for r in roles},
                       **base)


class Trainer:
    """What an algorithm's `models(cfg, trainer)` hook may run before the main phase (its
    frozen models: Pre-DPO's guide, DRPO's reward model), each a checkpointed phase of the run."""

    def __init__(self, cfg, model_cfg, sft_params, task, ctx, batch_fn):
        self.cfg, self.model_cfg, self.sft_params = cfg, model_cfg, sft_params
        self.task, self.ctx, self.batch_fn = task, ctx, batch_fn

    def algo_config(self, name):
        """The default config of preference algorithm `name`."""
        return algo_config(name)

    def train_pairs(self, phase, algo, steps):
        """`steps` updates of the pairwise algorithm `algo` (a config like `cfg.algo`) from the
        SFT model with the SFT model as reference, on the run's pairs, as phase `phase`:
        returns the trained params (with LoRA merged)."""
        cfg = self.cfg
        step = policy_step(cfg, self.model_cfg, self.task, algo=algo)
        state = policy_state(cfg, step, self.sft_params, self.sft_params)
        hp = {"optim": optim_hparams(cfg.optim), "algo": algo_hparams(algo)}
        state = train_phase(phase, step, state, self.batch_fn, steps, hp, cfg, self.ctx)
        return trained_params(state, self.model_cfg.lora_scale)

    def train_reward_model(self):
        """The reward model of `cfg.rm` (phase "rm"): returns its params."""
        return train_reward_model(self.cfg, self.model_cfg, self.sft_params, self.task,
                                  self.ctx)


def train_policy(cfg, model_cfg, sft_params, task, ctx, eval_batch, src):
    """The phases the algorithm's `models` hook runs (guide, rm), then pref on the pairs of
    `src` (pair_source): returns the final policy params."""
    batch_fn = lambda s: flip_pairs(src.make_batch(cfg.seed + 3, s, cfg.pref.batch_size),
                                    cfg.pref.get("flip_rate", 0.0), cfg.seed + 3, s)
    held = (src.eval_batch() if cfg.pref.source == "jsonl"
            else src.make_batch(EVAL_SEED + 2, 0, cfg.pref.eval_pairs))
    models_hook = hook_of(preference_algorithm(cfg.algo.name), "models")
    models = models_hook(cfg, Trainer(cfg, model_cfg, sft_params, task, ctx, batch_fn))
    if "reference" in models and "init_params" in ctx:
        raise UserError(f"config pref.reference: 'init' with algo.name={cfg.algo.name!r}, whose "
                        "own `models` hook supplies the reference (Pre-DPO: its guide)")
    ref, rm = models.get("reference", ctx.get("init_params", sft_params)), models.get(
        "reward_model")
    step = policy_step(cfg, model_cfg, task, model_cfg if rm is not None else None)
    state = policy_state(cfg, step, sft_params, ref, rm)
    pair_metrics = jax.jit(step.eval_metrics)
    own_logprobs = jax.jit(step.pair_logprobs)
    if lora.enabled(cfg) and ref is sft_params:   # the state's reference: the base as held
        ref = lora.base_weights(ref, compute_dtype(model_cfg))

    def eval_fn(params):
        res = {} if eval_batch is None else evaluate(model_cfg, params, task, cfg, eval_batch)
        m = pair_metrics(params, ref, held)
        lw, ll = own_logprobs(params, held)
        # pair_acc: the implicit reward against the run's reference (for Pre-DPO its guide);
        # policy_pair_acc: the policy's own log-probs, chosen above rejected (no reference:
        # comparable across algorithms and references)
        return dict(res, pair_acc=float(m["accuracy"]), pair_loss=float(m["loss"]),
                    policy_pair_acc=float(jnp.mean(lw > ll)))

    splits = dict(eval_splits(cfg, task, eval_batch)) if eval_batch is not None else {}
    val_fn = (lambda params: evaluate(model_cfg, params, task, cfg, splits["validation"])
              ) if "validation" in splits else None
    state = train_phase("pref", step, state, batch_fn, cfg.pref.steps, hparams(cfg), cfg, ctx,
                        eval_fn, val_fn)
    return trained_params(state, model_cfg.lora_scale)


# ------------------------------------------------------------------------------- run

def run(cfg, workdir: str, allow_config_change: bool = False, sft_cache=None) -> Dict:
    """Runs (or resumes) the configured experiment in `workdir`; returns the summary. As
    rlpt.train.run: a lock against a second live run, a changed config refused unless
    `allow_config_change`, a sweep point's warm-up shared through `sft_cache`."""
    return run_in_workdir(cfg, workdir, validate,
                          lambda c, w: _run_locked(c, w, sft_cache), allow_config_change,
                          default_config)


def _run_locked(cfg, workdir: str, sft_cache=None) -> Dict:
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    # the pairs are read and tokenized before anything trains: a bad row fails now, naming
    # its file and line, not after the SFT phase
    pairs = pair_source(cfg, task) if cfg.mode == "policy" else None
    mesh = sharding.make_mesh(dict(cfg.mesh))
    log = MetricsLog(os.path.join(workdir, "metrics.jsonl"))
    wb = WandbLogger(cfg, workdir)
    runs = Runs([log], wb=wb)
    ctx = dict(mesh=mesh, runs=runs, workdir=workdir)
    what = cfg.algo.name if cfg.mode == "policy" else f"reward model {cfg.rm.kind}"
    if distributed.is_main():
        print(f"rlpt.preference.train: model {model_cfg.num_params():,} params, task "
              f"{cfg.task.name}, {what}, devices {jax.device_count()} "
              f"({jax.devices()[0].platform}) in {jax.process_count()} process(es), "
              f"workdir {workdir}")
    t0 = time.time()
    if cfg.mode == "policy" and cfg.pref.get("reference", "sft") == "init":
        ctx["init_params"] = jax.tree_util.tree_map(jnp.array, params)   # a copy: SFT donates
    params = warm_up(cfg, model_cfg, params, task, mesh, workdir, runs, sft_cache)
    params = jax.tree_util.tree_map(jnp.array, params)
    t_sft = time.time() - t0
    if cfg.mode == "reward_model":
        train_reward_model(cfg, model_cfg, params, task, ctx)
        main = "rm"
    else:
        eval_batch = None  # task evaluation needs the task's prompts; eval.n_prompts=0 skips it
        if cfg.pref.source == "synthetic" and cfg.eval.n_prompts > 0:
            eval_batch = task.eval_set(cfg.eval.n_prompts)
        train_policy(cfg, model_cfg, params, task, ctx, eval_batch, pairs)
        main = "pref"
    wb.finish()
    distributed.barrier("rows written")
    rows = log.read()
    evals = [r for r in rows if r["phase"] == f"{main}_eval"]
    strip = lambda r: {k: v for k, v in r.items() if k != "phase"}
    summary = {"mode": cfg.mode, "algo": what, "initial": strip(evals[0]),
               "final": strip(evals[-1]), "sft_steps": cfg.sft.steps,
               "sft_seconds": round(t_sft, 1),
               "seconds_this_session": round(time.time() - t0, 1)}
    summary.update(validation_summary(rows))   # validation_after_sft / _after_rl: first, last
    if sft_cache and sft_cache.source:
        summary["sft_reused_from"] = sft_cache.source
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
    from rlpt.io.cli import cli_main
    cli_main(run, argv, prog="rlpt.preference.train")


if __name__ == "__main__":
    main()

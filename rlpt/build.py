"""The builders every entry point calls (rlpt.train for one run, rlpt.sweep for a vmapped group,
the preference trainer, the scripts): the model, the task, the reward, and each phase's pieces

    step, state, hp, make_batch = build_sft(cfg, model_cfg, params, task, mesh)
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, task, mesh)

(`step(state, batch, hp)` a pure SFT step; `spec` the static RL StepSpec of rlpt.step; `state`
the step-0 TrainState, placed on `mesh` when given; `hp` the dynamic hyperparameters;
`make_batch(step)` the host batch of a step, a function of (seed, step)). A single run jits
them; a sweep group stacks R of them and vmaps (rlpt.sweep.run).

`params` is always the full model. With LoRA (`cfg.lora.rank > 0`, rlpt.models.lora) each phase's
state trains fresh adapters on it (`lora_params`: `state.params` the adapters, `frozen["base"]`
the model); the next phase starts from the merged result (rlpt.state.trained_params), so RL after
an SFT warm-up trains new adapters whose base, and KL reference, is the SFT model.
"""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from rlpt import registry
from rlpt.algorithms.base import chain_of, split_algo_config
from rlpt.config import hparams
from rlpt.envs.tool_rollout import ToolConfig, rollout_kind
from rlpt.rewards.proxy import configured_proxy, proxy_and_task_reward
from rlpt.errors import UserError
from rlpt.loop import place_state
from rlpt.models import get_model_config, has_own_tokenizer, init_params, lora
from rlpt.models.config import memory_options
from rlpt.models.transformer import compute_dtype
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.rewards.host_callback import host_reward_callback
from rlpt.rewards.judge import build_judge, judge_batch
from rlpt.rewards.mixed import routed_reward, with_route
from rlpt.rewards.prompt_target import prompt_with_target
from rlpt.sampling import PLAIN_ROLLOUT, SamplingConfig
from rlpt.state import new_state
from rlpt.step import StepSpec, sft_step
from rlpt.tasks import sft_batch
from rlpt.tokenizers import HFTokenizer


def build_model(cfg):
    """`(model_cfg, params)`: the checkpoint or preset of `cfg.model` (the full model; with LoRA
    its `lora_scale` is alpha / rank, `cfg.lora.rank` checked against the model's layers here,
    before anything compiles, and build_sft / build_rl split off the adapters)."""
    m = cfg.model
    if m.checkpoint:  # a HF directory, a .gguf file or a llama2.c .bin (rlpt.models.checkpoints)
        from rlpt.models import load_checkpoint
        model_cfg, params = load_checkpoint(m.checkpoint, m.dtype, m.get("checkpoint_format", ""))
        model_cfg = with_memory_options(cfg, model_cfg)
        return lora_model(cfg, model_cfg, jax.tree_util.tree_map(jnp.asarray, params))
    extra = {"vocab_size": int(m.vocab_size)} if m.get("vocab_size") else {}
    model_cfg = with_memory_options(cfg, get_model_config(m.preset, dtype=m.dtype, **extra))
    return lora_model(cfg, model_cfg, init_params(model_cfg, jax.random.PRNGKey(cfg.seed)))


def with_memory_options(cfg, model_cfg):
    """`model_cfg` with the memory fields of `cfg.model` (rlpt.models.config.memory_options:
    remat, attention, attention_block, logits_chunk, vocab_chunk; a config saved before them
    gets the defaults). A `model.vocab_chunk` that does not divide the model's vocabulary is
    refused (UserError naming the key and both numbers), not padded: the chunks stay views of
    the unembedding matrix."""
    options = memory_options(cfg.model)
    vocab, chunk = model_cfg.vocab_size, int(options["vocab_chunk"])
    if chunk and vocab % chunk:
        near = sorted((d for d in range(1, vocab + 1) if vocab % d == 0),
                      key=lambda d: abs(d - chunk))[:3]
        raise UserError(f"config model.vocab_chunk: {chunk} does not divide the model's "
                        f"vocabulary ({vocab}); use a divisor of {vocab} (e.g. {near}) or 0 "
                        "(the whole vocabulary)")
    warn_remat_on_cpu(options["remat"])
    try:
        return dataclasses.replace(model_cfg, **options)
    except ValueError as e:   # a value validate() would refuse, from a config it never saw
        raise UserError(f"config {e}") from None


CPU_REMAT_FLAG = "--xla_disable_hlo_passes=cse_barrier_expander"


def warn_remat_on_cpu(remat: str) -> None:
    """XLA:CPU's `cse_barrier_expander` pass removes the optimisation barriers jax.checkpoint
    puts around a recomputation, and common-subexpression elimination then merges the
    recomputation back into the forward: `model.remat` saves (almost) nothing on CPU unless the
    pass is disabled (tests/test_memory_features.py measures both). Said once, on stderr, when
    remat is asked for on CPU without the flag; GPU and TPU are unaffected."""
    import os
    import sys
    if (remat != "none" and jax.default_backend() == "cpu"
            and CPU_REMAT_FLAG not in os.environ.get("XLA_FLAGS", "")):
        print(f"rlpt: model.remat={remat!r} on XLA:CPU saves almost no memory unless XLA_FLAGS "
              f"has {CPU_REMAT_FLAG} (set it before starting Python)", file=sys.stderr)


LORA_RNG = 0x10A   # the adapters' init key: fold_in(PRNGKey(seed), LORA_RNG)


def lora_model(cfg, model_cfg, params):
    """`(with_lora(cfg, model_cfg), params)`, refused (UserError naming `lora.rank` or
    `lora.targets`) when the adapters of `cfg.lora` do not fit the model's layers."""
    if lora.enabled(cfg):
        lora.check_rank(params, int(cfg.lora.rank), tuple(cfg.lora.targets))
    return with_lora(cfg, model_cfg), params


def with_lora(cfg, model_cfg):
    """`model_cfg` with `lora_scale` = alpha / rank of `cfg.lora` (unchanged when LoRA is off)."""
    if not lora.enabled(cfg):
        return model_cfg
    return dataclasses.replace(model_cfg, lora_scale=lora.config_scale(cfg))


def lora_params(cfg, model_cfg, params, trainable=()):
    """The trainable params and the frozen models a phase's state starts from: with LoRA on
    (`cfg.lora.rank > 0`), `(adapters, {"base": base})` (rlpt.models.lora.split: fresh adapters
    of `cfg.lora` on every targeted projection, B = 0, plus the top-level subtrees named in
    `trainable`; the base in the compute dtype, refused naming `lora.rank` when a layer is too
    small), else `(params, {})`."""
    if not lora.enabled(cfg):
        return params, {}
    rng = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), LORA_RNG)
    adapters, base = lora.split(params, int(cfg.lora.rank), tuple(cfg.lora.targets), rng,
                                compute_dtype(model_cfg), trainable)
    return adapters, {"base": base}


def build_task(cfg):
    """The task of `cfg.task`, refused (check_task_fits_checkpoint) when it cannot read the
    text of `cfg.model.checkpoint`, or, for an environment, with an SFT warm-up and no
    demonstrations, or another rollout kind."""
    task = registry.get("task", cfg.task.name)(**cfg.task.kwargs.to_dict())
    check_task_fits_checkpoint(cfg, task)
    if hasattr(task, "environment"):   # a Python environment (rlpt.tasks.env_task)
        if cfg.sft.steps and task.environment.demonstration is None:
            raise UserError(f"config sft.steps={cfg.sft.steps}: environment "
                            f"{task.environment.name!r} has no demonstration (gold completions) "
                            "to warm up on; set --config.sft.steps=0")
        if rollout_kind(cfg) != "plain":
            raise UserError(f"config rollout.kind={rollout_kind(cfg)!r}: task 'env' plays its "
                            "own protocol; leave rollout.kind at 'plain'")
    return task


def check_task_fits_checkpoint(cfg, task) -> None:
    """A checkpoint that comes with its own tokenizer (a GGUF file, a HF directory holding
    tokenizer.json) trains only on a task that encodes text with a real tokenizer: on the
    character tokenizer of the synthetic tasks its ids would mean other tokens to the model
    (a run that trains and learns nothing, silently). Refused naming both, before the model
    is loaded."""
    ckpt = cfg.model.checkpoint
    if not ckpt or isinstance(getattr(task, "tokenizer", None), HFTokenizer):
        return
    if has_own_tokenizer(ckpt):
        tok = getattr(task, "tokenizer", None)
        what = (f"the {type(tok).__name__} ({tok.vocab_size} ids)" if tok is not None
                else "no real tokenizer")
        raise UserError(
            f"config model.checkpoint: {ckpt} comes with its own tokenizer, but task "
            f"{cfg.task.name!r} encodes text with {what}: the model would read other tokens. "
            "Use a task that reads the checkpoint's tokenizer (task.kwargs.tokenizer_path; "
            "configs/smollm2_rlvr.py), or a checkpoint trained on this task's tokenizer")


def host_reward_fn(task):
    """The task's pure-Python reference reward over decoded strings (for the host boundary):
    `task.host_reward` when the task has one (tool, GSM8K), else its `reference_reward`."""
    if hasattr(task, "host_reward"):
        return task.host_reward
    from rlpt.tasks.synthetic_reward import completion_text

    def fn(tokens, mask, target, target_len):
        out = np.zeros(tokens.shape[0], np.float32)
        for i in range(tokens.shape[0]):
            text, terminated = completion_text(tokens[i], mask[i])
            example = {"target": target[i], "target_len": target_len[i]}
            out[i] = task.reference_reward(text, example, terminated)
        return out
    return fn


def learned_reward_model(cfg, task):
    """The reward model trained in `cfg.reward.rm_workdir` (an rlpt.preference.train run in mode
    reward_model: its config.json and newest `rm` checkpoint) as `(model_cfg, params, reward)`:
    the RM's scores are the reward, the task's own reward rides along in aux
    (rlpt.preference.reward_model.reward_model_and_task_reward)."""
    from rlpt.io.checkpoints import restore_params, run_model_config
    from rlpt.models.loaders import read_json_file
    from rlpt.preference.reward_model import init_reward_model, reward_model_and_task_reward
    workdir = cfg.reward.rm_workdir
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"config reward.rm_workdir: {path} does not exist (train the reward "
                        "model first: python -m rlpt.train --config=configs/rm_arith.py ...)")
    rm_cfg = run_model_config(read_json_file(path))
    shapes = jax.eval_shape(lambda: init_reward_model(rm_cfg, jax.random.PRNGKey(0)))
    _, _, params = restore_params(workdir, rm_cfg, "rm", shapes=shapes)
    vocab = int(getattr(task.tokenizer, "vocab_size", 0))
    if rm_cfg.vocab_size < vocab:
        raise UserError(f"config reward.rm_workdir: the reward model's vocabulary "
                        f"({rm_cfg.vocab_size}) is smaller than the task tokenizer's ({vocab})")
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return rm_cfg, params, reward_model_and_task_reward(
        rm_cfg, task.reward, int(task.prompt_len), int(task.tokenizer.pad_id))


def build_rl(cfg, model_cfg, params, task, mesh=None, reward=None, per_prompt_metrics=False):
    """The RL phase of a validated config: `(spec, state, hp, make_batch)`: the static step
    spec, the initial train state (placed on `mesh` when given), the dynamic `hp` and
    `make_batch(step)`. `reward(frozen, tokens, mask, target, target_len) -> (r, aux)` replaces
    the configured one (tests, scripts)."""
    algorithm = registry.get("algorithm", cfg.algo.name)
    scfg = SamplingConfig.from_config(cfg.sampling)
    make_batch, frozen, models = task.make_batch, {}, {}
    kind = cfg.reward.kind
    if kind == "judge":  # the judge reads the prompt from target (rlpt.rewards.judge)
        models["judge"], frozen["judge"], model_reward = build_judge(cfg, task)
        make_batch = lambda *a: judge_batch(task.make_batch(*a))
    if kind == "reward_model":  # the RM reads [prompt | gold target] from target
        component, n_parts = cfg.reward.get("rm_component", -1), len(getattr(task, "parts", ()))
        if component >= n_parts:
            raise UserError(f"config reward.rm_component: {component} is not a component of "
                            f"the task (it has {n_parts})")
        models["reward_model"], frozen["reward_model"], model_reward = learned_reward_model(
            cfg, task)
        make_batch = lambda *a: prompt_with_target(task.make_batch(*a))
        if component >= 0:   # the RM scores one component's rows, the rule the rest
            model_reward = routed_reward(model_reward)
            make_batch = lambda *a: with_route(prompt_with_target(task.make_batch(*a)),
                                               component)
    if reward is None:   # a frozen model's score, the task's own reward, or a proxy's
        reward = model_reward if kind in ("judge", "reward_model") else task_reward(
            task, kind, cfg.nonfinite.reward_value, mesh, configured_proxy(cfg))
    static_algo, _ = split_algo_config(cfg.algo)
    chain = chain_of(static_algo, algorithm)
    model_cfg = with_lora(cfg, model_cfg)
    for piece in chain:   # the reference (none with LoRA: the base), a teacher, ...
        if piece.frozen_models:
            for role, (m_cfg, m_params) in piece.frozen_models(cfg, model_cfg, params).items():
                models[role], frozen[role] = m_cfg, m_params
    params, base = lora_params(cfg, model_cfg, params)   # LoRA: the adapters train
    frozen.update(base)
    rollout = PLAIN_ROLLOUT
    if rollout_kind(cfg) == "tool":   # the calculator game's compiled protocol
        rollout = task.calculator_environment(ToolConfig.from_config(cfg.get("tool"))).compiled
    if hasattr(task, "environment"):   # a Python environment (rlpt.envs.multiturn)
        from rlpt.envs.multiturn import ENV_ROLLOUT
        rollout = ENV_ROLLOUT
    spec = StepSpec(model_cfg=model_cfg, scfg=scfg, algorithm=algorithm, algo=static_algo,
                    advantage=registry.get("advantage", cfg.algo.advantage),
                    optimizer=make_optimizer(cfg.optim), rollout=rollout, reward=reward,
                    batch_size=cfg.rl.batch_size, ppo_epochs=cfg.rl.ppo_epochs,
                    minibatches=cfg.rl.minibatches, grad_accum=cfg.rl.get("grad_accum", 1),
                    models=models,
                    per_prompt_metrics=per_prompt_metrics,
                    nonfinite_reward=float(cfg.nonfinite.reward_value), chain=chain)
    n_prompts = cfg.rl.batch_size * cfg.algo.oversample
    algo_state = None
    if algorithm.init:
        params, algo_state = algorithm.init(spec, params, make_batch(cfg.seed + 1, 0, n_prompts),
                                            cfg.seed)
    state = new_state(params, spec.optimizer, cfg.seed, frozen, algo_state)
    if mesh is not None:
        state = place_state(state, spec.optimizer, mesh)
    return spec, state, hparams(cfg), lambda step: make_batch(cfg.seed + 1, step, n_prompts)


def task_reward(task, kind: str, on_error: float = 0.0, mesh=None, proxy=None):
    """The step's reward `fn(frozen, tokens, mask, target, target_len)` of a task: its on-device
    reward (`device`; a `proxy` reward in its place, the task's logged beside it:
    rlpt.rewards.proxy), or its host reward through `jax.pure_callback` (`host`; `split` calls
    the host reward between two programs and never this one); a host row that raises scores
    `on_error`; with a `mesh`, each process scores the rows its devices hold."""
    if kind == "device" and proxy is not None:
        fn = proxy_and_task_reward(proxy, task.reward)
        return lambda frozen, *a: fn(*a)
    if kind == "device":   # looked up when called: an environment task scores in its rollout
        return lambda frozen, *a: task.reward(*a)
    host = host_reward_callback(host_reward_fn(task), on_error, mesh)
    return lambda frozen, *a: host(*a)



def build_sft(cfg, model_cfg, params, task, mesh=None):
    """The SFT phase of a validated config: `(step, state, hp, make_batch)` (module doc). Tool
    and environment demonstrations are teacher-forced over the whole solution with the loss on
    the model's tokens (`solution_loss_mask`), not the tool's or the environment's."""
    optimizer = make_optimizer(cfg.sft.optim)
    model_cfg = with_lora(cfg, model_cfg)
    params, frozen = lora_params(cfg, model_cfg, params)   # LoRA: the adapters train
    state = new_state(params, optimizer, cfg.seed, frozen)
    if mesh is not None:
        state = place_state(state, optimizer, mesh)
    # demonstrations holding tool or environment tokens (input, not targets), whichever rollout
    # RL plays: arms with and without the tool share their warm-up
    with_env = hasattr(task, "calculator_environment") or hasattr(task, "environment")
    loss_mask = "solution_loss_mask" if with_env else "solution_mask"
    return (sft_step(model_cfg, optimizer, loss_mask), state,
            {"optim": optim_hparams(cfg.sft.optim)},
            lambda step: sft_batch(task, cfg.seed, step, cfg.sft.batch_size))

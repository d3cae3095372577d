"""The run configuration: defaults, `k=v` argument parsing, and validation before compilation.

Experiment files in configs/ build on `base_config()`; every field is documented here once.
`validate(cfg)` checks names against the registry and values against each other, and raises a
ValueError naming the offending key before anything is compiled.

`hparams(cfg)` is the dynamic half of a validated config: every float of `cfg.optim` and
`cfg.algo` as a pytree of float32 scalars, the argument the compiled step takes (a new value
never recompiles). Everything else (shapes, names, which terms exist) is static.
"""
import importlib.util
import math
import os
import sys

import ml_collections

from rlpt import registry
from rlpt.algorithms.base import accumulation_blocker, chain_of, feature_pieces, split_algo_config
from rlpt.distributed import DEFAULTS as DISTRIBUTED_DEFAULTS
from rlpt.distributed import validate as validate_distributed
from rlpt.errors import UserError
from rlpt.losses.aggregation import AGG_MODES as LOSS_AGG_MODES
from rlpt.losses.policy import SURROGATE_DEFAULTS
from rlpt.models import lora
from rlpt.models.config import ATTENTION_CHOICES, PRESETS, REMAT_CHOICES, memory_options
from rlpt.optim import MASTER_DTYPES, SCHEDULES, master_dtype_error, optim_hparams


def config_file(path: str):
    """The module of a config file (configs/x.py: `get_config(arg)`, maybe `get_sweep(arg)`).
    When the file's directory is a package (configs/ is: its files import `configs.recipes`),
    the directory above it goes on sys.path, so a config loads from any working directory."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such config file {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
            sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location(
        "rlpt_config_" + os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(spec: str) -> ml_collections.ConfigDict:
    """`'configs/x.py:arg'` -> that file's `get_config(arg)`."""
    path, _, arg = spec.partition(":")
    return config_file(path).get_config(arg)


def parse_arg(arg: str, **defaults) -> dict:
    """'size=tiny,seed=1' -> {'size': 'tiny', 'seed': 1} over `defaults` (types follow them)."""
    out = dict(defaults)
    for part in filter(None, (arg or "").split(",")):
        if "=" not in part:
            raise UserError(f"config argument {part!r} is not key=value (in {arg!r})")
        k, v = part.split("=", 1)
        if k not in defaults:
            raise UserError(f"unknown config argument {k!r}; known: {sorted(defaults)}")
        out[k] = type(defaults[k])(v) if defaults[k] is not None else v
    return out


def override(c: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Sets the field at dotted `key` of `c` from the command-line text `text`, as
    `--config.<key>=<text>` does for rlpt.train: parsed as the field's type (a bool from
    true/false/1/0, a number, a string; a Python literal for a tuple, list or None field). An
    unknown key or an unparsable value is a UserError naming the key."""
    import ast
    *path, leaf = key.split(".")
    node = c
    for part in path:
        if not isinstance(node.get(part), ml_collections.ConfigDict):
            raise UserError(f"unknown config key {key} (no {part!r} there)")
        node = node[part]
    if leaf not in node:
        raise UserError(f"unknown config key {key}; known there: {sorted(node.keys())}")
    old = node[leaf]
    try:
        if isinstance(old, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            value = text.lower() in ("true", "1")
        elif isinstance(old, (int, float, str)):
            value = type(old)(text)
        else:
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise UserError(f"--config.{key}={text}: the field is of type {type(old).__name__} "
                        f"({e})") from None
    node[leaf] = value


def optim_config(lr: float, warmup_steps: int = 10, schedule: str = "constant"):
    """An optimizer block (rlpt.optim). `master_dtype`: the dtype of the trained parameters,
    "float32" (float32 master weights and moments whatever model.dtype) or "bfloat16", which
    needs `stochastic_rounding=True` (float32 update, stochastically rounded write-back)."""
    return ml_collections.ConfigDict(dict(
        lr=lr, schedule=schedule, warmup_steps=warmup_steps, decay_steps=0,
        final_lr_fraction=0.1, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0, max_grad_norm=1.0,
        master_dtype="float32", stochastic_rounding=False))


def default_algo(name: str) -> ml_collections.ConfigDict:
    """The defaults of algorithm `name`: the shared surrogate's (rlpt.losses.policy), those of
    every feature piece (rlpt/pieces/: off by default), the shaping list, and the algorithm's
    own paper defaults (its file's DEFAULTS), later ones winning. A preference or reward-model
    algorithm has only its own DEFAULTS (rlpt.preference.config.algo_config)."""
    algorithm = registry.get("algorithm", name)
    if algorithm.kind != "policy_gradient":
        return ml_collections.ConfigDict(dict(name=name, **algorithm.defaults))
    fields = dict(SURROGATE_DEFAULTS, name=name)
    for piece in feature_pieces():
        fields.update(piece.defaults)
    fields["shaping"] = ()
    fields.update(algorithm.defaults)
    return ml_collections.ConfigDict(fields)


def base_config(algo: str = "grpo") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    # model: a preset (rlpt.models.config.PRESETS) or a checkpoint to load
    c.model = ml_collections.ConfigDict(dict(
        preset="tiny", dtype="float32", checkpoint="",  # HF dir, .gguf or llama2.c .bin
        checkpoint_format="",  # optional: "" detects the kind; "hf" | "gguf" | "llama2c" asserts it
        vocab_size=0,  # > 0: the preset's shape with this vocabulary (a real tokenizer's)
        # memory of the forward (rlpt.models.config; every choice computes the same numbers):
        remat="none",  # "none" | "block" (recompute each block in the backward) | a policy name
        attention="plain",  # "plain" | "blockwise" (online softmax, no [T, S]) | "dot_product"
        attention_block=512,  # blockwise: query/key block size; keys up to this long run plain
        logits_chunk=0,  # > 0: completion log-probs this many columns at a time (0 = off)
        vocab_chunk=0))  # > 0 (with logits_chunk): this many vocabulary columns at a time
    # task: a registered prompt source and its knobs
    c.task = ml_collections.ConfigDict(dict(
        name="addition", kwargs=ml_collections.ConfigDict(dict(min_digits=1, max_digits=2))))
    c.sampling = ml_collections.ConfigDict(dict(
        max_new_tokens=8, num_samples=8, temperature=1.0, top_k=0, top_p=1.0, min_new_tokens=0,
        stop_tokens=(2,), pad_id=0, loop="while"))
    # rollout: "plain" (rlpt.sampling) | "tool" (the calculator environment in the sampler's
    # environment hook, rlpt.envs.tool_rollout; knobs in cfg.tool, needs a tool task)
    c.rollout = ml_collections.ConfigDict(dict(kind="plain"))
    # algo: loss/advantage by name with the paper defaults; group_size follows num_samples
    c.algo = default_algo(algo)
    c.algo.group_size = -1
    if "temperature" in c.algo:  # the paper's sampling temperature (1-shot RLVR: 0.6)
        c.sampling.temperature = c.algo.temperature
    c.rl = ml_collections.ConfigDict(dict(
        steps=100, batch_size=16, ppo_epochs=1, minibatches=1, iters_per_call=1,
        # > 1: each minibatch's gradient accumulated over this many microbatches of whole groups
        # (rlpt.step.accumulated_loss_and_grads: the same gradient, 1/grad_accum of the update's
        # activations, one extra forward)
        grad_accum=1))
    c.optim = optim_config(1e-4)
    # supervised warm-up on the task's worked solutions (steps=0 to skip)
    c.sft = ml_collections.ConfigDict(dict(steps=0, batch_size=64, optim=optim_config(1e-3)))
    # (optional key, not set here so that existing run directories keep their config:
    # eval.self_correction=True adds the greedy second-attempt rates sc_* after the prompt of
    # MGRPO's layer 2, built with algo.layer2_instruction_ids; rlpt.evaluation.rollout.evaluate;
    # eval.validation_prompts=n evaluates n validation prompts too, rows with phase "validation",
    # for choosing hyperparameters apart from the held-out prompts: rlpt.evaluation.validation;
    # eval.calibration=True adds the greedy answers' calibration, ece / confidence /
    # confidence_auc: rlpt.evaluation.metrics.calibration; eval.seed=s evaluates every run with
    # the rng of seed s instead of its own, so runs of different seeds are scored on the same
    # draws; eval.sample_chunk=c draws the n_samples per prompt c at a time, bounding the
    # sampler's memory for pass@256; eval.greedy_aux=("leading_zero",) reports the mean of
    # those entries of the task reward's aux over the greedy answers, greedy_<key>:
    # rlpt.evaluation.rollout)
    c.eval = ml_collections.ConfigDict(dict(
        every=50, n_prompts=256, n_samples=8, ks=(1, 4, 8), temperature=1.0))
    # LoRA (rlpt.models.lora): rank > 0 trains low-rank adapters of the named projections
    # (scale alpha / rank) on a frozen base, which is also the KL reference; 0 = full model
    c.lora = ml_collections.ConfigDict(dict(rank=0, alpha=16.0, targets=lora.TARGETS))
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    # "device" | "host" | "split" | "judge" (a frozen LM as the reward: cfg.reward.judge, see
    # rlpt.rewards.judge.judge_config) | "reward_model" (a trained reward model, the workdir of
    # its rlpt.preference.train run in the optional key reward.rm_workdir: rlpt.build; with the
    # optional reward.rm_component >= 0 it scores that transfer component's rows, the task's
    # rule the others: rlpt.rewards.mixed)
    c.reward = ml_collections.ConfigDict(dict(kind="device"))
    c.log_every = 10
    c.ckpt_every = 50
    # non-finite guard (rlpt.optim.apply_update skips such updates; rlpt.loop.NonFiniteMonitor):
    # stop after `stop_after` consecutive steps with a skipped update (0 = keep skipping); a
    # NaN/inf or raising reward scores `reward_value` and is counted (on_reward="replace"), or
    # stops the run (on_reward="fail")
    c.nonfinite = ml_collections.ConfigDict(dict(stop_after=5, reward_value=0.0,
                                                 on_reward="replace"))
    # several processes (rlpt.distributed): cluster="auto" (TPU pod / SLURM detection) or an
    # explicit coordinator "host:port" with num_processes and process_id (RLPT_COORDINATOR,
    # RLPT_NUM_PROCESSES, RLPT_PROCESS_ID override them); a lost peer is an error after
    # heartbeat_timeout_s
    c.distributed = ml_collections.ConfigDict(dict(DISTRIBUTED_DEFAULTS))
    c.wandb = ml_collections.ConfigDict(dict(mode="offline", project="rlpt", name=""))
    return c


def _fail(key, msg):
    raise UserError(f"config {key}: {msg}")


def _validate_proxy(c):
    """`reward.proxy`: a registered reward trained on in place of the task's (device rewards
    only), its `reward.proxy_kwargs` among the function's keyword arguments."""
    import inspect
    from rlpt import registry
    if c.reward.kind != "device":
        _fail("reward.proxy", f"needs reward.kind='device', got {c.reward.kind!r}")
    try:
        fn = registry.get("reward", c.reward.proxy)
    except KeyError as e:
        _fail("reward.proxy", str(e).strip('"'))
    keywords = list(inspect.signature(fn).parameters)[4:]   # after tokens, mask, target, len
    for k in dict(c.reward.get("proxy_kwargs", {}) or {}):
        if k not in keywords:
            _fail(f"reward.proxy_kwargs.{k}", f"not a keyword of reward {c.reward.proxy!r} "
                  f"(it takes {keywords})")


def _validate_step_fields(c):
    """The chain's config: shaping names, every feature piece's validate (which also resolves the
    term flags kl_term / entropy_term / sft_term), the algorithm's own."""
    a = c.algo
    for name in a.get("shaping", ()):
        if not registry.has("shaping", name):
            _fail("algo.shaping", f"unknown shaping {name!r}; known: {registry.names('shaping')}")
    for piece in feature_pieces():
        if piece.validate:
            piece.validate(c)
    if "temperature" in a and float(a.temperature) != float(c.sampling.temperature):
        _fail("algo.temperature", f"{a.temperature} differs from sampling.temperature="
              f"{c.sampling.temperature}; log-probs use the sampling temperature: set "
              "sampling.temperature (and algo.temperature) to the one you mean")
    validate_algorithm = registry.get("algorithm", a.name).validate
    if validate_algorithm:
        validate_algorithm(c)


def validate_grad_accum(c):
    """`rl.grad_accum` splits each minibatch's prompts (groups) evenly, and the step can
    accumulate (rlpt.algorithms.base.accumulation_blocker)."""
    k, groups = c.rl.get("grad_accum", 1), c.rl.batch_size // c.rl.minibatches
    if k == 1:
        return
    if groups % k:
        _fail("rl.grad_accum", f"{k} does not divide the {groups} prompts of a minibatch "
              f"(rl.batch_size={c.rl.batch_size} / rl.minibatches={c.rl.minibatches}); "
              "microbatches hold whole groups")
    algorithm = registry.get("algorithm", c.algo.name)
    why = accumulation_blocker(algorithm, chain_of(split_algo_config(c.algo)[0], algorithm))
    if why:
        _fail("rl.grad_accum", f"{k} > 1 is not supported here: {why}; use rl.grad_accum=1")


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks the config and fills derived fields (algo.group_size). Returns the config."""
    if not c.model.checkpoint and c.model.preset not in PRESETS:
        _fail("model.preset", f"{c.model.preset!r} is not a preset; known: {sorted(PRESETS)}")
    if c.model.get("checkpoint_format", "") not in ("", "hf", "gguf", "llama2c"):
        _fail("model.checkpoint_format", f"{c.model.checkpoint_format!r}; expected '' (detect), "
              "'hf', 'gguf' or 'llama2c'")
    if int(c.model.get("vocab_size", 0)) < 0 or (c.model.checkpoint and c.model.get("vocab_size")):
        _fail("model.vocab_size", "must be >= 0, and 0 with a checkpoint (it has its own)")
    if c.model.dtype not in ("float32", "bfloat16"):
        _fail("model.dtype", f"{c.model.dtype!r}; expected 'float32' or 'bfloat16'")
    validate_model_memory(c.model, c.sampling.max_new_tokens)
    if _is_preference_algo(c.algo.name):
        _fail("algo.name", f"{c.algo.name!r} is a preference / reward-model algorithm: its "
              "config is a preference config (configs/dpo_arith.py, configs/rm_arith.py), "
              "validated by rlpt.preference.config and run by rlpt.preference.train")
    for kind, key in (("task", "task.name"), ("algorithm", "algo.name"),
                      ("advantage", "algo.advantage")):
        name = {"task.name": c.task.name, "algo.name": c.algo.name,
                "algo.advantage": c.algo.advantage}[key]
        if not registry.has(kind, name):
            _fail(key, f"unknown {kind} {name!r}; known: {registry.names(kind)}")
    _validate_step_fields(c)
    if c.algo.loss_agg not in LOSS_AGG_MODES:
        _fail("algo.loss_agg", f"{c.algo.loss_agg!r}; known: {list(LOSS_AGG_MODES)}")
    s = c.sampling
    if s.temperature <= 0:
        _fail("sampling.temperature", f"{s.temperature} must be > 0")
    if not 0 < s.top_p <= 1:
        _fail("sampling.top_p", f"{s.top_p} must be in (0, 1]")
    if s.max_new_tokens < 1 or s.num_samples < 1:
        _fail("sampling", "max_new_tokens and num_samples must be >= 1")
    if s.loop not in ("while", "scan"):
        _fail("sampling.loop", f"{s.loop!r}; expected 'while' or 'scan'")
    if s.top_k < 0:
        _fail("sampling.top_k", f"{s.top_k} must be >= 0 (0 = no top-k truncation)")
    why = registry.get("advantage", c.algo.advantage).group_baseline
    if s.num_samples == 1 and why:
        _fail("sampling.num_samples", f"1 sample per prompt, but algo.advantage="
              f"{c.algo.advantage!r} is a group baseline: {why}; use num_samples >= 2")
    if c.algo.group_size == -1:
        c.algo.group_size = s.num_samples
    elif c.algo.group_size != s.num_samples:
        _fail("algo.group_size", f"{c.algo.group_size} != sampling.num_samples={s.num_samples}; "
              "leave it at -1 to follow num_samples")
    r = c.rl
    for k in ("steps", "batch_size", "ppo_epochs", "minibatches", "iters_per_call", "grad_accum"):
        if r.get(k, 1) < (0 if k == "steps" else 1):
            _fail(f"rl.{k}", f"{r[k]} is out of range")
    if r.iters_per_call > 1 and len(c.task.kwargs.get("bucket_sizes", ())) > 1:
        _fail("rl.iters_per_call", "stacks batches of one shape; task.kwargs.bucket_sizes has "
              "several prompt widths (use one bucket or iters_per_call=1)")
    if r.batch_size % r.minibatches:
        _fail("rl.minibatches", f"{r.minibatches} does not divide rl.batch_size={r.batch_size}")
    validate_grad_accum(c)
    for key, period in (("rl.steps", r.steps), ("log_every", c.log_every),
                        ("ckpt_every", c.ckpt_every), ("eval.every", c.eval.every)):
        if period % r.iters_per_call:
            _fail("rl.iters_per_call", f"{r.iters_per_call} does not divide {key}={period} (a "
                  "call runs that many steps; logs, checkpoints and evals fall between calls)")
    validate_optim(c.optim, "optim")
    validate_optim(c.sft.optim, "sft.optim")
    if c.sft.steps < 0 or c.sft.batch_size < 1:
        _fail("sft", "steps must be >= 0 and batch_size >= 1")
    if c.eval.n_prompts < 1 or c.eval.n_samples < 1:
        _fail("eval.n_prompts" if c.eval.n_prompts < 1 else "eval.n_samples",
              f"{c.eval.n_prompts if c.eval.n_prompts < 1 else c.eval.n_samples} must be >= 1")
    n_val = c.eval.get("validation_prompts", 0)
    if not isinstance(n_val, int) or isinstance(n_val, bool) or n_val < 0:
        _fail("eval.validation_prompts", f"{n_val!r} must be an integer >= 0 (0 = no validation "
              "split; rlpt.evaluation.validation)")
    if any(k > c.eval.n_samples or k < 1 for k in c.eval.ks):
        _fail("eval.ks", f"{tuple(c.eval.ks)} must lie in [1, eval.n_samples={c.eval.n_samples}]")
    if c.eval.get("self_correction", False):
        validate_self_correction(c)
    chunk = c.eval.get("sample_chunk", 0)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0 or \
            (chunk and c.eval.n_samples % chunk):
        _fail("eval.sample_chunk", f"{chunk!r} must be 0 (all samples at once) or an integer "
              f"that divides eval.n_samples={c.eval.n_samples}")
    if chunk and (c.get("rollout", {}).get("kind", "plain") != "plain" or c.task.name == "env"):
        _fail("eval.sample_chunk", "the tool rollout's and a Python environment's evaluations "
              "draw all samples at once: leave it 0")
    greedy_aux = c.eval.get("greedy_aux", ())
    if not isinstance(greedy_aux, (tuple, list)) or not all(isinstance(k, str)
                                                            for k in greedy_aux):
        _fail("eval.greedy_aux", f"{greedy_aux!r} must be a tuple of names of the task "
              "reward's aux entries, e.g. ('leading_zero',)")
    if greedy_aux and (c.get("rollout", {}).get("kind", "plain") != "plain"
                       or c.task.name == "env"):
        _fail("eval.greedy_aux", "only the plain rollout's evaluation reports the reward's aux: "
              "leave it empty")
    eval_seed = c.eval.get("seed", None)
    if eval_seed is not None and (not isinstance(eval_seed, int) or isinstance(eval_seed, bool)
                                  or eval_seed < 0):
        _fail("eval.seed", f"{eval_seed!r} must be an integer >= 0, or absent (each run's own "
              "seed)")
    if c.reward.kind not in ("device", "host", "split", "judge", "reward_model"):
        _fail("reward.kind", f"{c.reward.kind!r}; expected 'device', 'host', 'split', 'judge' or "
              "'reward_model'")
    if c.reward.kind == "reward_model" and not c.reward.get("rm_workdir", ""):
        _fail("reward.rm_workdir", "reward.kind='reward_model' needs the workdir of a trained "
              "reward model (an rlpt.preference.train run in mode reward_model)")
    rm_component = c.reward.get("rm_component", -1)   # rlpt.rewards.mixed
    if not isinstance(rm_component, int) or isinstance(rm_component, bool) or rm_component < -1:
        _fail("reward.rm_component", f"{rm_component!r}; expected a component index >= 0 (its "
              "rows scored by the reward model, the others by the task's rule) or -1 (every row)")
    if rm_component >= 0 and c.reward.kind != "reward_model":
        _fail("reward.rm_component", f"{rm_component} needs reward.kind='reward_model', got "
              f"{c.reward.kind!r}")
    if rm_component >= 0 and c.task.name != "transfer":
        _fail("reward.rm_component", f"{rm_component} needs the transfer task, whose rows carry "
              f"their component (got task.name={c.task.name!r})")
    if c.reward.kind == "judge":
        from rlpt.rewards.judge import validate_judge_config
        validate_judge_config(c)
    if c.reward.get("proxy", ""):   # rlpt.rewards.proxy
        _validate_proxy(c)
    from rlpt.envs.tool_rollout import validate_rollout_config
    validate_rollout_config(c)
    if c.wandb.mode not in ("offline", "online", "disabled"):
        _fail("wandb.mode", f"{c.wandb.mode!r}; expected 'offline', 'online' or 'disabled'")
    if c.log_every < 1 or c.ckpt_every < 1 or c.eval.every < 1:
        _fail("log_every/ckpt_every/eval.every", "must be >= 1")
    validate_nonfinite(c)
    validate_distributed(c.get("distributed"))
    validate_finite(c, ("algo",))
    lora.validate_config(c)
    return c


def validate_self_correction(c):
    """`eval.self_correction=True` (the `sc_*` rates of rlpt.evaluation.rollout.evaluate): a
    second greedy attempt after `q + first answer + algo.layer2_instruction_ids`, so those ids
    must exist."""
    if not tuple(c.algo.get("layer2_instruction_ids", ())):
        _fail("algo.layer2_instruction_ids", "empty (or absent), but eval.self_correction=True "
              "builds the second attempt's prompt as prompt + first answer + these ids: set "
              "them (e.g. the tokenizer's ids of a short marker; configs/mgrpo_selfcorrect.py)")
    if c.rollout.get("kind", "plain") != "plain":
        _fail("eval.self_correction", f"True needs rollout.kind='plain' (got "
              f"{c.rollout.kind!r}: the tool rollout's evaluation has no second attempt)")


def validate_model_memory(m, completion_length: int):
    """The memory fields of the `model` section `m` (rlpt.models.config.memory_options: absent
    in configs saved before them, read at their defaults); `completion_length` is
    sampling.max_new_tokens, which model.logits_chunk must divide. model.vocab_chunk must also
    divide the vocabulary, known once the model is built (rlpt.build.build_model refuses it)."""
    o = memory_options(m)
    if o["remat"] not in REMAT_CHOICES:
        _fail("model.remat", f"{o['remat']!r}; known: {list(REMAT_CHOICES)}")
    if o["attention"] not in ATTENTION_CHOICES:
        _fail("model.attention", f"{o['attention']!r}; known: {list(ATTENTION_CHOICES)}")
    if int(o["attention_block"]) <= 0:
        _fail("model.attention_block", f"{o['attention_block']} must be > 0 (the key and query "
              "block of blockwise attention)")
    for key in ("logits_chunk", "vocab_chunk"):
        if int(o[key]) < 0:
            _fail(f"model.{key}", f"{o[key]} must be >= 0 (0 = off)")
    chunk = int(o["logits_chunk"])
    if chunk and completion_length % chunk:
        divisors = [d for d in range(1, completion_length + 1) if completion_length % d == 0]
        _fail("model.logits_chunk", f"{chunk} does not divide the completion length "
              f"sampling.max_new_tokens={completion_length}: set it to one of {divisors} "
              "(or 0 = off)")
    if int(o["vocab_chunk"]) and not chunk:
        _fail("model.vocab_chunk", f"{o['vocab_chunk']} chunks the vocabulary of the chunked "
              "log-probs: set model.logits_chunk > 0 as well (or vocab_chunk=0)")


def validate_vocab(c, vocab_size: int, tokenizer_size: int = 0):
    """Once the model is built (before compiling): its vocabulary holds every id the run uses,
    the tokenizer's (`tokenizer_size`, 0 = unknown) and the sampling stop and pad ids."""
    where = "model.checkpoint" if c.model.checkpoint else "model.vocab_size"
    if tokenizer_size > vocab_size:
        _fail(where, f"the model's vocabulary ({vocab_size}) is smaller than the tokenizer's "
              f"({tokenizer_size}): ids >= {vocab_size} would index past the embedding")
    for key, ids in (("sampling.stop_tokens", tuple(c.sampling.stop_tokens)),
                     ("sampling.pad_id", (c.sampling.pad_id,)),
                     ("algo.layer2_instruction_ids",
                      tuple(c.algo.get("layer2_instruction_ids", ())))):
        bad = [int(i) for i in ids if not 0 <= int(i) < vocab_size]
        if bad:
            _fail(key, f"id(s) {bad} outside the model's vocabulary [0, {vocab_size})")


OPTIM_RANGES = {   # field: (test, what it must be); NaN fails every test
    "lr": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "decay_steps": (lambda v: v >= 0, ">= 0"),
    "final_lr_fraction": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "eps": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "max_grad_norm": (lambda v: v >= 0, ">= 0 (0 = no clipping; a negative norm flips the "
                      "gradient: gradient ascent)"),
}


def validate_optim(o, key: str):
    """The optimizer block `o` (at config key `key`): the schedule's name, and every numeric
    field finite and in its range (OPTIM_RANGES); a cosine schedule decays after its warm-up."""
    if o.schedule not in SCHEDULES:
        _fail(f"{key}.schedule", f"{o.schedule!r}; expected 'constant' or 'cosine'")
    for field, (ok, what) in OPTIM_RANGES.items():
        v = float(o[field])
        if not (math.isfinite(v) and ok(v)):
            _fail(f"{key}.{field}", f"{o[field]} must be {what}")
    if o.schedule == "cosine" and o.decay_steps <= o.warmup_steps:
        _fail(f"{key}.decay_steps", f"{o.decay_steps} must be > {key}.warmup_steps="
              f"{o.warmup_steps} with schedule='cosine' (the step where the decay ends)")
    master = o.get("master_dtype", "float32")   # configs saved before the field: float32
    sr = o.get("stochastic_rounding", False)
    if master not in MASTER_DTYPES:
        _fail(f"{key}.master_dtype", f"{master!r}; expected one of {list(MASTER_DTYPES)}")
    if not isinstance(sr, bool):
        _fail(f"{key}.stochastic_rounding", f"{sr!r} must be True or False")
    if master == "bfloat16" and not sr:
        _fail(f"{key}.master_dtype", master_dtype_error(key))
    if sr and master == "float32":
        _fail(f"{key}.stochastic_rounding", f"True has no effect with {key}.master_dtype="
              "'float32' (float32 weights take the update exactly): set master_dtype="
              "'bfloat16' or stochastic_rounding=False")


def validate_finite(c, groups):
    """Every float of the config blocks `groups` (dotted keys, e.g. "algo", "sft.optim") is
    finite (the hyperparameters; no device touched)."""
    for group in groups:
        section = c
        for part in group.split("."):
            section = section[part]
        for k, v in section.items():
            if isinstance(v, float) and not math.isfinite(v):
                _fail(f"{group}.{k}", f"{v} is not finite")


def validate_nonfinite(c):
    """The `nonfinite` block (shared with rlpt.preference.config)."""
    nf = c.nonfinite
    if int(nf.stop_after) < 0:
        _fail("nonfinite.stop_after", f"{nf.stop_after} must be >= 0 (0 = never stop)")
    if nf.on_reward not in ("replace", "fail"):
        _fail("nonfinite.on_reward", f"{nf.on_reward!r}; expected 'replace' or 'fail'")
    if not math.isfinite(float(nf.reward_value)):
        _fail("nonfinite.reward_value", f"{nf.reward_value} is not finite")


def _is_preference_algo(name: str) -> bool:
    """Whether `name` is a registered algorithm of the preference trainer (kind "preference" or
    "reward_model")."""
    return (registry.has("algorithm", name)
            and registry.get("algorithm", name).kind in ("preference", "reward_model"))


def hparams(c: ml_collections.ConfigDict) -> dict:
    """The dynamic pytree of a validated config: `{"optim": ..., "algo": ...}` (module doc)."""
    return {"optim": optim_hparams(c.optim), "algo": split_algo_config(c.algo)[1]}

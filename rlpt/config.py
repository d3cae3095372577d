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

import ml_collections

from rlpt import catalog  # noqa: F401  (fills the registry)
from rlpt import registry
from rlpt.algorithms.base import TERM_FLAGS, split_algo_config
from rlpt.distributed import DEFAULTS as DISTRIBUTED_DEFAULTS
from rlpt.distributed import validate as validate_distributed
from rlpt.losses.aggregation import AGG_MODES as LOSS_AGG_MODES
from rlpt.losses.defaults import algo_fields
from rlpt.models.config import PRESETS
from rlpt.optim import SCHEDULES, optim_hparams


# Advantage estimators whose baseline is the other samples of the group, and what one sample
# per group does to them (refused by validate).
GROUP_BASELINES = {
    "grpo": "the group std of one reward is 0, every advantage is 0 and nothing is learned",
    "dr_grpo": "reward minus the group mean is 0, nothing is learned",
    "rloo": "the leave-one-out mean divides by G - 1 = 0",
    "reinforce_pp": "reward minus the group mean is 0, nothing is learned",
    "unlikeliness": "the group statistics of one sample are degenerate, nothing is learned",
    "grpo_process": "the group statistics of one sample are degenerate, nothing is learned",
    "gtpo": "the group statistics of one sample are degenerate, nothing is learned",
    "grpo_s": "the group statistics of one sample are degenerate, nothing is learned",
}


def config_file(path: str):
    """The module of a config file (configs/x.py: `get_config(arg)`, maybe `get_sweep(arg)`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such config file {path!r}")
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
            raise ValueError(f"config argument {part!r} is not key=value (in {arg!r})")
        k, v = part.split("=", 1)
        if k not in defaults:
            raise ValueError(f"unknown config argument {k!r}; known: {sorted(defaults)}")
        out[k] = type(defaults[k])(v) if defaults[k] is not None else v
    return out


def optim_config(lr: float, warmup_steps: int = 10, schedule: str = "constant"):
    return ml_collections.ConfigDict(dict(
        lr=lr, schedule=schedule, warmup_steps=warmup_steps, decay_steps=0,
        final_lr_fraction=0.1, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0, max_grad_norm=1.0))


# Fields of cfg.algo read by the generic step for any algorithm (rlpt.step):
STEP_ALGO_FIELDS = dict(
    shaping=(),                        # reward shaping names, applied in order (algorithms.shaping)
    dynamic_sampling=False,            # DAPO keep mask over degenerate groups
    dynamic_sampling_metric="correct",  # correct | raw | shaped
    dynamic_sampling_atol=0.0,
    oversample=1,                      # sample oversample*batch_size prompts, keep batch_size groups
    sft_term_coef=0.0,                 # + coef * NLL(gold solution | prompt), any loss
    sft_term=None,                     # whether that term exists (None: sft_term_coef > 0)
)


def default_algo(name: str) -> ml_collections.ConfigDict:
    """The defaults of algorithm `name`: the loss's paper defaults (rlpt.losses.defaults), the
    generic step knobs and the algorithm record's own defaults."""
    algorithm = registry.get("algorithm", name)
    fields = algo_fields(name, algorithm.defaults)
    for k, v in STEP_ALGO_FIELDS.items():
        fields.setdefault(k, v)
    return ml_collections.ConfigDict(fields)


def base_config(algo: str = "grpo") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    # model: a preset (rlpt.models.config.PRESETS) or a checkpoint to load
    c.model = ml_collections.ConfigDict(dict(
        preset="tiny", dtype="float32", checkpoint="",  # HF dir, .gguf or llama2.c .bin
        checkpoint_format="",  # optional: "" detects the kind; "hf" | "gguf" | "llama2c" asserts it
        vocab_size=0))  # > 0: the preset's shape with this vocabulary (a real tokenizer's)
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
        steps=100, batch_size=16, ppo_epochs=1, minibatches=1, iters_per_call=1))
    c.optim = optim_config(1e-4)
    # supervised warm-up on the task's worked solutions (steps=0 to skip)
    c.sft = ml_collections.ConfigDict(dict(steps=0, batch_size=64, optim=optim_config(1e-3)))
    # (optional key, not set here so that existing run directories keep their config:
    # eval.self_correction=True adds the greedy second-attempt rates sc_* after the prompt of
    # MGRPO's layer 2, built with algo.layer2_instruction_ids; rlpt.train.evaluate)
    c.eval = ml_collections.ConfigDict(dict(
        every=50, n_prompts=256, n_samples=8, ks=(1, 4, 8), temperature=1.0))
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    # "device" | "host" | "split" | "judge" (a frozen LM as the reward: cfg.reward.judge, see
    # rlpt.rewards.judge.judge_config)
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
    raise ValueError(f"config {key}: {msg}")


def _validate_step_fields(c):
    """The generic step's knobs (rlpt.step) and the term flags."""
    from rlpt.algorithms.dynamic_sampling import METRICS
    a = c.algo
    for name in a.get("shaping", ()):
        if name not in registry.names("shaping"):
            _fail("algo.shaping", f"unknown shaping {name!r}; known: {registry.names('shaping')}")
    if a.get("dynamic_sampling_metric", "correct") not in METRICS:
        _fail("algo.dynamic_sampling_metric", f"{a.dynamic_sampling_metric!r}; known: "
              f"{list(METRICS)}")
    if int(a.get("oversample", 1)) < 1:
        _fail("algo.oversample", f"{a.oversample} must be >= 1")
    if int(a.get("oversample", 1)) > 1 and not a.get("dynamic_sampling", False):
        _fail("algo.oversample", "over-sampling needs algo.dynamic_sampling=True")
    if float(a.get("sft_term_coef", 0.0)) < 0:
        _fail("algo.sft_term_coef", f"{a.sft_term_coef} must be >= 0")
    for flag, coefs in TERM_FLAGS.items():
        nonzero = [k for k in coefs if float(a.get(k, 0.0) or 0.0) != 0.0]
        if a.get(flag) is None:
            a[flag] = bool(nonzero)
        elif not a[flag] and nonzero:
            _fail(f"algo.{flag}", f"False, but algo.{nonzero[0]}={a[nonzero[0]]} is non-zero: "
                  f"set algo.{flag}=True to keep the term (or the coefficient to 0)")
    if "temperature" in a and float(a.temperature) != float(c.sampling.temperature):
        _fail("algo.temperature", f"{a.temperature} differs from sampling.temperature="
              f"{c.sampling.temperature}; log-probs use the sampling temperature: set "
              "sampling.temperature (and algo.temperature) to the one you mean")
    validate_algorithm = registry.get("algorithm", a.name).validate
    if validate_algorithm:
        validate_algorithm(c)


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
    if c.algo.name not in registry.names("algorithm") and _is_preference_algo(c.algo.name):
        _fail("algo.name", f"{c.algo.name!r} is a preference algorithm: run it with "
              "`python -m rlpt.preference.train` (configs/preference.py), not rlpt.train")
    for kind, key in (("task", "task.name"), ("algorithm", "algo.name"),
                      ("advantage", "algo.advantage")):
        name = {"task.name": c.task.name, "algo.name": c.algo.name,
                "algo.advantage": c.algo.advantage}[key]
        if name not in registry.names(kind):
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
    if s.num_samples == 1 and c.algo.advantage in GROUP_BASELINES:
        _fail("sampling.num_samples", f"1 sample per prompt, but algo.advantage="
              f"{c.algo.advantage!r} is a group baseline: {GROUP_BASELINES[c.algo.advantage]}; "
              "use num_samples >= 2")
    if c.algo.group_size == -1:
        c.algo.group_size = s.num_samples
    elif c.algo.group_size != s.num_samples:
        _fail("algo.group_size", f"{c.algo.group_size} != sampling.num_samples={s.num_samples}; "
              "leave it at -1 to follow num_samples")
    r = c.rl
    for k in ("steps", "batch_size", "ppo_epochs", "minibatches", "iters_per_call"):
        if r[k] < (0 if k == "steps" else 1):
            _fail(f"rl.{k}", f"{r[k]} is out of range")
    if r.iters_per_call > 1 and len(c.task.kwargs.get("bucket_sizes", ())) > 1:
        _fail("rl.iters_per_call", "stacks batches of one shape; task.kwargs.bucket_sizes has "
              "several prompt widths (use one bucket or iters_per_call=1)")
    if r.batch_size % r.minibatches:
        _fail("rl.minibatches", f"{r.minibatches} does not divide rl.batch_size={r.batch_size}")
    for key, period in (("rl.steps", r.steps), ("log_every", c.log_every),
                        ("ckpt_every", c.ckpt_every), ("eval.every", c.eval.every)):
        if period % r.iters_per_call:
            _fail("rl.iters_per_call", f"{r.iters_per_call} does not divide {key}={period} (a "
                  "call runs that many steps; logs, checkpoints and evals fall between calls)")
    for key, o in (("optim", c.optim), ("sft.optim", c.sft.optim)):
        if o.lr <= 0:
            _fail(f"{key}.lr", f"{o.lr} must be > 0")
        if o.schedule not in SCHEDULES:
            _fail(f"{key}.schedule", f"{o.schedule!r}; expected 'constant' or 'cosine'")
    if c.sft.steps < 0 or c.sft.batch_size < 1:
        _fail("sft", "steps must be >= 0 and batch_size >= 1")
    if c.eval.n_prompts < 1 or c.eval.n_samples < 1:
        _fail("eval.n_prompts" if c.eval.n_prompts < 1 else "eval.n_samples",
              f"{c.eval.n_prompts if c.eval.n_prompts < 1 else c.eval.n_samples} must be >= 1")
    if any(k > c.eval.n_samples or k < 1 for k in c.eval.ks):
        _fail("eval.ks", f"{tuple(c.eval.ks)} must lie in [1, eval.n_samples={c.eval.n_samples}]")
    if c.eval.get("self_correction", False):
        validate_self_correction(c)
    if c.reward.kind not in ("device", "host", "split", "judge"):
        _fail("reward.kind", f"{c.reward.kind!r}; expected 'device', 'host', 'split' or 'judge'")
    if c.reward.kind == "judge":
        from rlpt.rewards.judge import validate_judge_config
        validate_judge_config(c)
    from rlpt.envs.tool_rollout import validate_rollout_config
    validate_rollout_config(c)
    if c.wandb.mode not in ("offline", "online", "disabled"):
        _fail("wandb.mode", f"{c.wandb.mode!r}; expected 'offline', 'online' or 'disabled'")
    if c.log_every < 1 or c.ckpt_every < 1 or c.eval.every < 1:
        _fail("log_every/ckpt_every/eval.every", "must be >= 1")
    validate_nonfinite(c)
    validate_distributed(c.get("distributed"))
    for group in ("optim", "sft.optim", "algo"):   # the floats of hparams (no device touched)
        section = c.sft.optim if group == "sft.optim" else c[group]
        for k, v in section.items():
            if isinstance(v, float) and not math.isfinite(v):
                _fail(f"{group}.{k}", f"{v} is not finite")
    return c


def validate_self_correction(c):
    """`eval.self_correction=True` (the `sc_*` rates of rlpt.train.evaluate): a second greedy
    attempt after `q + first answer + algo.layer2_instruction_ids`, so those ids must exist."""
    if not tuple(c.algo.get("layer2_instruction_ids", ())):
        _fail("algo.layer2_instruction_ids", "empty (or absent), but eval.self_correction=True "
              "builds the second attempt's prompt as prompt + first answer + these ids: set "
              "them (e.g. the tokenizer's ids of a short marker; configs/mgrpo_selfcorrect.py)")
    if c.rollout.get("kind", "plain") != "plain":
        _fail("eval.self_correction", f"True needs rollout.kind='plain' (got "
              f"{c.rollout.kind!r}: the tool rollout's evaluation has no second attempt)")


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
    from rlpt.preference.step import ALGOS
    return name in ALGOS


def arithmetic_run(c, a: dict, rl_steps: int, rl_batch_size: int, eval_every: int):
    """The 1-2 digit addition setup shared by configs/grpo_arith.py and configs/algos.py:
    SFT warm-up (500 x 64, lr 1e-3), then `rl_steps` RL steps of `rl_batch_size` prompts x 8
    samples (5 new tokens, lr 5e-4). `a` holds the parsed `seed`, `size` and `quick` arguments;
    quick=1 is a seconds-long smoke version."""
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=2)
    c.sampling.max_new_tokens = 5
    c.sampling.num_samples = 8
    c.rl.steps = rl_steps
    c.rl.batch_size = rl_batch_size
    c.optim.lr = 5e-4
    c.sft.steps = 500
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = eval_every
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 6, 10, 3, 32
        c.log_every = c.ckpt_every = 3
    return c


SCRATCHPAD_ARGS = dict(seed=0, size="tiny", quick=0, rl_steps=200, sft_steps=300, batch=16,
                       max_new=48, lr=3e-4, max_digits=3, hard_max_digits=0, evals=2)


def scratchpad_run(c, a: dict):
    """The scratchpad-addition recipe shared by the experiments' configs (configs/dr_grpo_length.py,
    yue_passk.py, ppo_vs_grpo.py, gspo_gmpo_stability.py, gtpo_entropy.py): the `size` preset
    trained from scratch, SFT (`sft_steps` x 64 worked solutions of 1..`max_digits`-digit sums,
    lr 1e-3; a hard split up to `hard_max_digits` digits without SFT data when > 0), then
    `rl_steps` RL steps of `batch`
    prompts x 8 samples at temperature 1 with `max_new` new tokens and RL learning rate `lr`, no KL
    term (beta = 0); held-out evaluation of 128 prompts x 8 samples after SFT and every
    rl_steps // `evals` steps. `a` holds SCRATCHPAD_ARGS (parsed); quick=1 is a seconds-long
    smoke version."""
    c.algo.beta = 0.0
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "scratchpad_addition"
    c.task.kwargs = dict(min_digits=1, max_digits=a["max_digits"])
    if a["hard_max_digits"]:  # the hard split (rlpt.tasks.scratchpad): no SFT data on hard rows
        c.task.kwargs.hard_max_digits = a["hard_max_digits"]
    c.sampling.max_new_tokens = a["max_new"]   # worked solutions need <= 10 * max_digits + 2
    c.sampling.num_samples = 8
    c.sampling.temperature = 1.0
    c.rl.steps = a["rl_steps"]
    c.rl.batch_size = a["batch"]
    c.optim.lr = a["lr"]
    c.sft.steps = a["sft_steps"]
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = max(1, a["rl_steps"] // max(1, a["evals"]))
    c.eval.n_prompts = 128
    c.eval.n_samples = 8
    c.log_every = 5
    c.ckpt_every = max(1, a["rl_steps"] // 4)
    c.wandb.mode = "disabled"
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 16
        c.log_every = c.ckpt_every = 2
    return c


def comparison_config(first: str, algos) -> ml_collections.ConfigDict:
    """The base config of a sweep comparing `algos` (rlpt.sweep_points.algorithm_arms with the
    same order): base_config(first) whose `algo` is union_algo(first, then the others), and
    group_size following sampling.num_samples in every arm."""
    c = base_config(first)
    c.algo = union_algo(first_then(first, algos))
    c.algo.group_size = -1
    return c


def first_then(first: str, algos) -> tuple:
    """`algos` with `first` moved to the front (the comparison's base algorithm)."""
    return (first,) + tuple(x for x in algos if x != first)


def union_algo(names) -> ml_collections.ConfigDict:
    """default_algo(names[0]) plus every key of the other algorithms' defaults it lacks (their
    first value), so that one base config holds every arm's fields and a sweep point switches the
    algorithm by overriding existing keys (rlpt.sweep_points.algorithm_arms)."""
    out = default_algo(names[0])
    for name in names[1:]:
        for k, v in default_algo(name).items():
            if k not in out:
                out[k] = v
    return out


def hparams(c: ml_collections.ConfigDict) -> dict:
    """The dynamic pytree of a validated config: `{"optim": ..., "algo": ...}` (module doc)."""
    return {"optim": optim_hparams(c.optim), "algo": split_algo_config(c.algo)[1]}

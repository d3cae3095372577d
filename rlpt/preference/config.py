"""Configs of the preference trainer (`python -m rlpt.preference.train`, and `python -m
rlpt.train`, which hands preference and reward-model algorithms to it): defaults and validation
before compilation.

Builds on rlpt.config.base_config (model, task, sampling, sft, eval, mesh, logging, wandb, seed)
and replaces `algo` / `rl` with:

    mode  "policy" (preference optimisation of the LM) or "reward_model" (train an RM)
    algo  policy mode: `name`, a registered algorithm of kind "preference" (rlpt/algorithms/
          <name>.py: dpo ipo cdpo rdpo simpo pre_dpo online_dpo drpo), and its DEFAULTS (its
          paper's loss knobs and procedure knobs, e.g. pre_dpo: guide_loss, guide_steps;
          online_dpo: loss, sync_every, num_samples; drpo: num_online, g). Reward-model mode:
          `name` = "rm_<rm.kind>", the record of the reward-model kind.
    pref  steps, batch_size, source ("synthetic" | "jsonl"), jsonl_path, jsonl_eval_pairs,
          max_prompt_len / max_response_len (jsonl), eval_pairs (held-out synthetic pairs);
          optional flip_rate (training pairs' labels swapped with that probability:
          rlpt.tasks.label_noise; rm.flip_rate likewise for reward-model groups) and reference
          ("sft", default: the SFT model is the reference; "init": the model before SFT)
    rm    reward models (also DRPO's with g="reward_model"): kind k (the record rm_<k>,
          rlpt/algorithms/rm_<k>.py: bt vrpo rlaif_soft rluf rlsf), steps, batch_size,
          group_size K, eval_prompts, init ("sft" | "random"), optim, and the kind's DEFAULTS
          (e.g. judge_scale, judge_noise, loss_type, love_correct, threshold, reduction)
    optim the policy optimizer (pref phase and the pre_dpo guide phase)

`hparams(cfg)` / `rm_hparams(cfg)` are the steps' `hp`: the optimizer's dynamic values and the
algorithm's declared dynamic fields (rlpt.preference.records.dynamic_hparams).
"""
import os

import ml_collections

from rlpt import registry
from rlpt.config import (base_config, optim_config, validate_finite, validate_nonfinite,
                         validate_optim)
from rlpt.errors import UserError
from rlpt.models import lora
from rlpt.models.config import PRESETS
from rlpt.optim import optim_hparams
from rlpt.preference.records import (PREFERENCE, REWARD_MODEL, dynamic_hparams, is_of_kind,
                                     names_of_kind, rm_kinds, rm_name, view)
from rlpt.preference.reward_model_step import hook_of as rm_hook
from rlpt.preference.step import frozen_roles_of, hook_of

MODES = ("policy", "reward_model")


def _fail(key, msg):
    raise UserError(f"config {key}: {msg}")


def preference_algorithm(name: str):
    """The preference record `name`; an unknown name (or one of another kind) is a
    "config algo.name" error listing the preference algorithms."""
    if not is_of_kind(name, PREFERENCE):
        _fail("algo.name", f"unknown preference algorithm {name!r}; known: "
              f"{names_of_kind(PREFERENCE)}")
    return registry.get("algorithm", name)


def reward_model_record(kind: str):
    """The record of reward-model kind `kind`; an unknown kind is a "config rm.kind" error
    listing the known kinds."""
    if not is_of_kind(rm_name(kind), REWARD_MODEL):
        _fail("rm.kind", f"unknown reward-model kind {kind!r}; known: {rm_kinds()}")
    return registry.get("algorithm", rm_name(kind))


def algo_config(name: str) -> ml_collections.ConfigDict:
    """`name` and the DEFAULTS of preference algorithm `name` (its paper's)."""
    return ml_collections.ConfigDict(dict(name=name, **preference_algorithm(name).defaults))


def rm_config(kind: str = "bt") -> ml_collections.ConfigDict:
    """The RM phase's knobs and the DEFAULTS of reward-model kind `kind`."""
    return ml_collections.ConfigDict(dict(
        kind=kind, steps=1000, batch_size=32, group_size=4, eval_prompts=512, init="sft",
        optim=optim_config(1e-3), **reward_model_record(kind).defaults))


def preference_config(mode: str = "policy", algo: str = "dpo", rm_kind: str = "bt"):
    c = base_config("grpo")
    del c["rl"], c["reward"]
    c.mode = mode
    c.algo = algo_config(algo) if mode == "policy" else ml_collections.ConfigDict(
        dict(name=rm_name(rm_kind)))
    c.pref = ml_collections.ConfigDict(dict(
        steps=200, batch_size=32, source="synthetic", jsonl_path="", jsonl_eval_pairs=0,
        max_prompt_len=16, max_response_len=8, eval_pairs=256))
    c.rm = rm_config(rm_kind)
    return c


def default_config(c) -> ml_collections.ConfigDict:
    """The code's default config for the mode, algorithm and reward-model kind of `c`."""
    policy = c.mode == "policy"
    return preference_config(c.mode, c.algo.name if policy else "dpo", c.rm.kind)


def algo_hparams(algo) -> dict:
    """The declared dynamic fields of a preference algorithm config `algo` (`hp["algo"]`)."""
    return dynamic_hparams(preference_algorithm(algo.name), algo)


def hparams(cfg) -> dict:
    """The policy step's `hp` of `cfg.algo` (and `cfg.optim`)."""
    return {"optim": optim_hparams(cfg.optim), "algo": algo_hparams(cfg.algo)}


def rm_hparams(cfg) -> dict:
    """The reward-model step's `hp` of `cfg.rm`."""
    record = reward_model_record(cfg.rm.kind)
    return {"optim": optim_hparams(cfg.rm.optim), "algo": dynamic_hparams(record, cfg.rm)}


def validate(c) -> ml_collections.ConfigDict:
    """Checks names and values; raises ValueError naming the key before anything compiles."""
    if c.get("mode") not in MODES:
        _fail("mode", f"{c.get('mode')!r}; expected 'policy' or 'reward_model' (a preference "
              "config: rlpt.preference.config.preference_config)")
    if not c.model.checkpoint and c.model.preset not in PRESETS:
        _fail("model.preset", f"{c.model.preset!r} is not a preset; known: {sorted(PRESETS)}")
    if c.task.name not in registry.names("task"):
        _fail("task.name", f"unknown task {c.task.name!r}; known: {registry.names('task')}")
    for key, o in (("optim", c.optim), ("sft.optim", c.sft.optim), ("rm.optim", c.rm.optim)):
        validate_optim(o, key)
    validate_finite(c, ("algo", "rm"))
    if c.sft.steps < 0 or c.pref.steps < 0 or c.rm.steps < 0:
        _fail("sft.steps/pref.steps/rm.steps", "must be >= 0")
    if c.pref.batch_size < 1 or c.rm.batch_size < 1:
        _fail("pref.batch_size/rm.batch_size", "must be >= 1")
    if c.log_every < 1 or c.ckpt_every < 1 or c.eval.every < 1:
        _fail("log_every/ckpt_every/eval.every", "must be >= 1")
    for key, rate in (("pref.flip_rate", c.pref.get("flip_rate", 0.0)),
                      ("rm.flip_rate", c.rm.get("flip_rate", 0.0))):
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
            _fail(key, f"{rate!r} must be a number in [0, 1) (the share of training labels "
                  "flipped: rlpt.tasks.label_noise)")
    reference = c.pref.get("reference", "sft")
    if reference not in ("sft", "init"):
        _fail("pref.reference", f"{reference!r}; expected 'sft' (the SFT model) or 'init' (the "
              "model before SFT: a deliberately wrong reference)")
    validate_nonfinite(c)
    lora.validate_config(c)
    if c.sampling.temperature <= 0:
        _fail("sampling.temperature", f"{c.sampling.temperature} must be > 0")
    if c.mode == "reward_model":
        _validate_rm(c)
        if c.algo.name != rm_name(c.rm.kind):
            _fail("algo.name", f"{c.algo.name!r} but rm.kind is {c.rm.kind!r}: a reward-model "
                  f"config's algo.name is 'rm_<rm.kind>' ({rm_name(c.rm.kind)!r})")
    else:
        record = preference_algorithm(c.algo.name)
        if "reward_model" in frozen_roles_of(record, view(record, c.algo)):
            _validate_rm(c)
        _validate_policy(c, record)
    return c


def _validate_rm(c):
    r = c.rm
    record = reward_model_record(r.kind)
    if r.group_size < 2:
        _fail("rm.group_size", f"{r.group_size} must be >= 2 (pairs need two responses)")
    if r.init not in ("sft", "random"):
        _fail("rm.init", f"{r.init!r}; expected 'sft' or 'random'")
    samples = rm_hook(record, "num_samples")(view(record, r)) is not None
    if samples and c.sft.steps == 0 and not c.model.checkpoint:
        _fail("rm.kind", f"{r.kind!r} samples from the policy: set sft.steps > 0 (or load a "
              "checkpoint) so that the policy is not random")
    if record.validate is not None:
        record.validate(c)


def _validate_policy(c, record):
    a, p = c.algo, c.pref
    if p.source not in ("synthetic", "jsonl"):
        _fail("pref.source", f"{p.source!r}; expected 'synthetic' or 'jsonl'")
    if p.source == "jsonl" and not os.path.exists(p.jsonl_path):
        _fail("pref.jsonl_path", f"{p.jsonl_path!r} does not exist")
    if p.source == "jsonl" and hook_of(record, "needs_task_reward")(view(record, a)):
        _fail("pref.source", f"{a.name} scores responses with the task reward: needs "
              "pref.source='synthetic'")
    if record.validate is not None:
        record.validate(c)

"""Configs for `python -m rlpt.preference.train`: defaults and validation before compilation.

Builds on rlpt.config.base_config (model, task, sampling, sft, eval, mesh, logging, wandb, seed)
and replaces `algo` / `rl` with:

    mode  "policy" (preference optimisation of the LM) or "reward_model" (train an RM)
    algo  policy mode: a registered preference loss config (rlpt.losses.preference defaults)
          with `name` in rlpt.preference.step.ALGOS, plus
            pre_dpo:     guide_loss ("dpo" | "simpo"), guide_steps (-1 = pref.steps)
            online_dpo:  loss (default "dpo"), sync_every (1 online, s semi-online, None
                         offline), num_samples N
            drpo:        num_online M, g ("task_reward" | "reward_model": an RM trained first
                         in the same run from `rm`)
    pref  steps, batch_size, source ("synthetic" | "jsonl"), jsonl_path, jsonl_eval_pairs,
          max_prompt_len / max_response_len (jsonl), eval_pairs (held-out synthetic pairs)
    rm    reward models: kind (rlpt.preference.reward_model_step.RM_KINDS), steps, batch_size,
          group_size K, judge_scale, judge_noise, love_correct, love_wrong, num_samples,
          confidence_method, threshold, eval_prompts, init ("sft" | "random"), optim, plus loss
          knobs (reduction, loss_type, pos_weight)
    optim the policy optimizer (pref phase and the pre_dpo guide phase)
"""
import os

import ml_collections

from rlpt import registry
from rlpt.config import base_config, optim_config, validate_nonfinite
from rlpt.losses.preference import IS_WEIGHT_MODES, default_preference_config
from rlpt.models.config import PRESETS
from rlpt.preference.pairs import should_sync
from rlpt.preference.reward_model_step import RM_KINDS, SAMPLING_KINDS
from rlpt.preference.step import ALGOS, G_KINDS


def algo_config(name: str) -> ml_collections.ConfigDict:
    """Paper defaults of a preference algorithm plus its procedure knobs (module docstring)."""
    if name not in ALGOS:
        raise ValueError(f"config algo.name: unknown preference algo {name!r}; known: {ALGOS}")
    a = default_preference_config("dpo" if name == "online_dpo" else name)
    a.name = name
    if name == "pre_dpo":
        a.guide_loss, a.guide_steps = "dpo", -1
    if name == "online_dpo":
        a.loss, a.sync_every, a.num_samples = "dpo", 1, 8
    if name == "drpo":
        a.num_online, a.g = 2, "task_reward"
    return a


def rm_config(kind: str = "bt") -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        kind=kind, steps=1000, batch_size=32, group_size=4, judge_scale=2.0, judge_noise=1.0,
        love_correct=0.8, love_wrong=0.1, num_samples=4, confidence_method="p_top1",
        threshold=0.9, eval_prompts=512, init="sft", optim=optim_config(1e-3),
        reduction="pair", loss_type="logistic", pos_weight=1.0))


def preference_config(mode: str = "policy", algo: str = "dpo", rm_kind: str = "bt"):
    c = base_config("grpo")
    del c["rl"], c["reward"]
    c.mode = mode
    c.algo = algo_config(algo) if mode == "policy" else ml_collections.ConfigDict(
        dict(name=f"rm_{rm_kind}"))
    c.pref = ml_collections.ConfigDict(dict(
        steps=200, batch_size=32, source="synthetic", jsonl_path="", jsonl_eval_pairs=0,
        max_prompt_len=16, max_response_len=8, eval_pairs=256))
    c.rm = rm_config(rm_kind)
    return c


def _fail(key, msg):
    raise ValueError(f"config {key}: {msg}")


def validate(c) -> ml_collections.ConfigDict:
    """Checks names and values; raises ValueError naming the key before anything compiles."""
    import rlpt.losses  # noqa: F401  (registration)
    import rlpt.tasks.synthetic  # noqa: F401

    if c.mode not in ("policy", "reward_model"):
        _fail("mode", f"{c.mode!r}; expected 'policy' or 'reward_model'")
    if not c.model.checkpoint and c.model.preset not in PRESETS:
        _fail("model.preset", f"{c.model.preset!r} is not a preset; known: {sorted(PRESETS)}")
    if c.task.name not in registry.names("task"):
        _fail("task.name", f"unknown task {c.task.name!r}; known: {registry.names('task')}")
    for key, o in (("optim", c.optim), ("sft.optim", c.sft.optim), ("rm.optim", c.rm.optim)):
        if o.lr <= 0:
            _fail(f"{key}.lr", f"{o.lr} must be > 0")
    if c.sft.steps < 0 or c.pref.steps < 0 or c.rm.steps < 0:
        _fail("sft.steps/pref.steps/rm.steps", "must be >= 0")
    if c.pref.batch_size < 1 or c.rm.batch_size < 1:
        _fail("pref.batch_size/rm.batch_size", "must be >= 1")
    if c.log_every < 1 or c.ckpt_every < 1 or c.eval.every < 1:
        _fail("log_every/ckpt_every/eval.every", "must be >= 1")
    validate_nonfinite(c)
    if c.sampling.temperature <= 0:
        _fail("sampling.temperature", f"{c.sampling.temperature} must be > 0")
    needs_rm = c.mode == "reward_model" or (c.algo.name == "drpo" and c.algo.g == "reward_model")
    if needs_rm:
        _validate_rm(c)
    if c.mode == "policy":
        _validate_policy(c)
    return c


def _validate_rm(c):
    r = c.rm
    if r.kind not in RM_KINDS:
        _fail("rm.kind", f"unknown reward-model kind {r.kind!r}; known: {RM_KINDS}")
    if r.group_size < 2:
        _fail("rm.group_size", f"{r.group_size} must be >= 2 (pairs need two responses)")
    if r.init not in ("sft", "random"):
        _fail("rm.init", f"{r.init!r}; expected 'sft' or 'random'")
    if r.kind in SAMPLING_KINDS and c.sft.steps == 0 and not c.model.checkpoint:
        _fail("rm.kind", f"{r.kind!r} samples from the policy: set sft.steps > 0 (or load a "
              "checkpoint) so that the policy is not random")
    if r.kind == "rlsf" and r.num_samples < 2:
        _fail("rm.num_samples", "rlsf needs >= 2 samples per prompt")
    if not 0 <= r.love_wrong <= 1 or not 0 <= r.love_correct <= 1:
        _fail("rm.love_correct/love_wrong", "must be probabilities")


def _validate_policy(c):
    a, p = c.algo, c.pref
    if a.name not in ALGOS:
        _fail("algo.name", f"unknown preference algo {a.name!r}; known: {ALGOS}")
    if p.source not in ("synthetic", "jsonl"):
        _fail("pref.source", f"{p.source!r}; expected 'synthetic' or 'jsonl'")
    if p.source == "jsonl" and not os.path.exists(p.jsonl_path):
        _fail("pref.jsonl_path", f"{p.jsonl_path!r} does not exist")
    if p.source == "jsonl" and (a.name == "online_dpo" or a.name == "drpo"
                                and a.g == "task_reward"):
        _fail("pref.source", f"{a.name} scores responses with the task reward: needs "
              "pref.source='synthetic'")
    if a.name in ("cdpo", "rdpo") and not 0 <= a.eps < 0.5:
        _fail("algo.eps", f"{a.eps} must be in [0, 0.5)")
    if a.name == "pre_dpo" and a.guide_loss not in ("dpo", "simpo"):
        _fail("algo.guide_loss", f"{a.guide_loss!r}; expected 'dpo' or 'simpo'")
    if a.name == "online_dpo":
        try:
            should_sync(0, a.sync_every)
        except ValueError as e:
            _fail("algo.sync_every", str(e))
        if a.num_samples < 2:
            _fail("algo.num_samples", "online DPO needs >= 2 samples per prompt")
        if a.loss not in registry.names("loss") or a.loss in ("drpo", "pre_dpo"):
            _fail("algo.loss", f"{a.loss!r} is not a pairwise preference loss")
    if a.name == "drpo":
        if a.g not in G_KINDS:
            _fail("algo.g", f"{a.g!r}; known: {G_KINDS}")
        if a.is_weight not in IS_WEIGHT_MODES:
            _fail("algo.is_weight", f"{a.is_weight!r}; known: {IS_WEIGHT_MODES}")
        if a.num_online < 1:
            _fail("algo.num_online", "must be >= 1")

"""KDRL (arXiv:2506.02208) [2nd]: GRPO plus distillation from a frozen teacher
(rlpt.losses.policy.kdrl_loss: `beta_t * k2(logp, teacher_logp)` on reward-masked responses).

The teacher's per-token log-probs of the student's samples are computed inside the step from
`state.frozen["teacher"]` with its own ModelConfig (`spec.models["teacher"]`; it must share the
tokenizer; its width and depth may differ). `algo.teacher_source` picks it:
  "policy"      a frozen copy of the initial policy (the parameters RL starts from, after any SFT
                warm-up): KD then pulls the student back toward where it started;
  "checkpoint"  `teacher_checkpoint`: a HF directory, a GGUF file or a llama2.c file
                (rlpt.models.load_checkpoint; `teacher_checkpoint_format` optional, "" detects);
  "preset"      a randomly initialised `teacher_preset` (seed `teacher_seed`): for smoke tests.
"""
import os

import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.errors import UserError
from rlpt.logprobs import completion_logprobs
from rlpt.losses.aggregation import completion_mask, masked_mean
from rlpt.losses.kl import kl_k2
from rlpt.losses.policy import clip_objective, resolve

TEACHER_SOURCES = ("policy", "checkpoint", "preset")


DEFAULTS = dict(loss_agg="token_mean", kd_beta_init=5e-3, kd_beta_min=1e-3, kd_beta_delta=5e-5,
                kd_mask="incorrect_response", teacher_source="policy", teacher_checkpoint="",
                teacher_checkpoint_format="", teacher_preset="", teacher_seed=1)
DYNAMIC = frozenset({"kd_beta_init", "kd_beta_min", "kd_beta_delta"})


def kd_beta(step, beta_init=5e-3, beta_min=1e-3, delta=5e-5):
    """KDRL annealing: `beta_t = max(beta_init - delta * t, beta_min)`."""
    return jnp.maximum(beta_init - delta * jnp.asarray(step), beta_min)


def kd_sequence_mask(rewards_N, group_size, mode, success_threshold=0.0):
    """KDRL reward-guided masking [2nd]: `incorrect_response` (spec default) applies KD only to
    responses that are not correct; `no_correct_in_group` only to prompts with no correct sample;
    `none` everywhere. Returns float [N]."""
    correct_N = rewards_N > success_threshold
    if mode == "none":
        return jnp.ones(rewards_N.shape, jnp.float32)
    if mode == "incorrect_response":
        return (~correct_N).astype(jnp.float32)
    if mode == "no_correct_in_group":
        any_B = jnp.any(correct_N.reshape(-1, group_size), axis=1)
        return jnp.repeat(~any_B, group_size).astype(jnp.float32)
    raise ValueError(f"unknown kd_mask {mode!r}; known: none, incorrect_response, "
                     "no_correct_in_group")


@registry.register("loss", "kdrl")
def kdrl_loss(batch, cfg):
    """KDRL (arXiv:2506.02208) [2nd]: per token `GRPO_clip + beta_t * k2(logp, teacher_logp) *
    kd_mask`, token_mean (the KD term shares the RL term's aggregation); beta_t from `kd_beta`
    (5e-3 -> 1e-3, delta 5e-5 per step, `batch["step"]`); kd_mask from `kd_sequence_mask`
    (cfg.kd_mask, needs `batch["rewards"]` unless "none"). teacher == student gives GRPO exactly."""
    c = resolve(cfg, "kdrl", DEFAULTS)
    beta_t = kd_beta(batch.get("step", 0), c.kd_beta_init, c.kd_beta_min, c.kd_beta_delta)
    if c.kd_mask == "none":
        kd_N = jnp.ones(batch["logp"].shape[:1], batch["logp"].dtype)
    else:
        kd_N = kd_sequence_mask(batch["rewards"], c.group_size, c.kd_mask, c.success_threshold)
    k2_NT = kl_k2(batch["logp"], batch["teacher_logp"])
    kd_NT = kd_N[:, None].astype(k2_NT.dtype) * k2_NT
    loss, metrics = clip_objective(batch, c, beta_t * kd_NT)
    mask_NT = completion_mask(batch)
    metrics.update(kd_beta=beta_t, kd_k2=masked_mean(k2_NT, mask_NT * kd_N[:, None]),
                   kd_frac=masked_mean(jnp.broadcast_to(kd_N[:, None], mask_NT.shape), mask_NT))
    return loss, metrics



def validate(cfg):
    source = cfg.algo.get("teacher_source", "policy")
    if source not in TEACHER_SOURCES:
        raise UserError(f"config algo.teacher_source: {source!r}; known: {list(TEACHER_SOURCES)}")


def preflight(cfg):
    """A checkpoint teacher must exist before the run trains (it is loaded after SFT)."""
    a = cfg.algo
    path = a.get("teacher_checkpoint", "")
    if a.get("teacher_source", "policy") == "checkpoint" and not os.path.exists(path):
        raise UserError(f"config algo.teacher_checkpoint: {path!r} does not exist (cwd "
                        f"{os.getcwd()}); teacher_source='checkpoint' loads the teacher from "
                        "there (a HF directory, a .gguf or a llama2.c file)")


def frozen_models(cfg, model_cfg, params):
    """-> {"teacher": (ModelConfig, params)} per `algo.teacher_source` (module doc)."""
    a = cfg.algo
    source = a.get("teacher_source", "policy")
    if source == "policy":
        return {"teacher": (model_cfg, jax.tree_util.tree_map(jnp.copy, params))}
    if source == "checkpoint":
        from rlpt.models import load_checkpoint
        t_cfg, t_params = load_checkpoint(a.teacher_checkpoint, cfg.model.dtype,
                                          a.get("teacher_checkpoint_format", ""))
        return {"teacher": (t_cfg, jax.tree_util.tree_map(jnp.asarray, t_params))}
    from rlpt.models import get_model_config, init_params
    t_cfg = get_model_config(a.teacher_preset, dtype=cfg.model.dtype)
    key = jax.random.PRNGKey(int(a.get("teacher_seed", 1)))
    return {"teacher": (t_cfg, init_params(t_cfg, key))}


def extras(spec, state, batch, out, data, raw_N, c, key):
    width = data["tokens"].shape[1] - data["mask"].shape[1]
    data = dict(data, teacher_logp=jax.lax.stop_gradient(completion_logprobs(
        spec.models["teacher"], state.frozen["teacher"], data["tokens"], data["valid"], width,
        spec.scfg.temperature, group_size=spec.G)[0]))
    return data, {}, {}


ALGORITHM = registry.register("algorithm", "kdrl")(Algorithm(
    "kdrl", kdrl_loss, defaults=DEFAULTS, dynamic=DYNAMIC, validate=validate, preflight=preflight,
    frozen_models=frozen_models, extras=extras))

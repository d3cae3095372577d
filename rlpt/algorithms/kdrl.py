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
from rlpt.logprobs import completion_logprobs
from rlpt.losses.policy import kdrl_loss

TEACHER_SOURCES = ("policy", "checkpoint", "preset")


def validate(cfg):
    source = cfg.algo.get("teacher_source", "policy")
    if source not in TEACHER_SOURCES:
        raise ValueError(f"config algo.teacher_source: {source!r}; known: {list(TEACHER_SOURCES)}")


def preflight(cfg):
    """A checkpoint teacher must exist before the run trains (it is loaded after SFT)."""
    a = cfg.algo
    path = a.get("teacher_checkpoint", "")
    if a.get("teacher_source", "policy") == "checkpoint" and not os.path.exists(path):
        raise ValueError(f"config algo.teacher_checkpoint: {path!r} does not exist (cwd "
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
    return {"teacher": (t_cfg, init_params(t_cfg, jax.random.PRNGKey(int(a.get("teacher_seed", 1)))))}


def extras(spec, state, batch, out, data, raw_N, c, key):
    width = data["tokens"].shape[1] - data["mask"].shape[1]
    data = dict(data, teacher_logp=jax.lax.stop_gradient(completion_logprobs(
        spec.models["teacher"], state.frozen["teacher"], data["tokens"], data["valid"], width,
        spec.scfg.temperature, group_size=spec.G)[0]))
    return data, {}, {}


ALGORITHM = registry.register("algorithm", "kdrl")(Algorithm(
    "kdrl", kdrl_loss, defaults=dict(teacher_source="policy", teacher_checkpoint="",
                                     teacher_checkpoint_format="", teacher_preset="",
                                     teacher_seed=1),
    validate=validate, preflight=preflight, frozen_models=frozen_models, extras=extras))

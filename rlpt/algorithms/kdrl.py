"""KDRL (arXiv:2506.02208) [2nd]: the frozen teacher model.

The teacher's per-token log-probs of the student's samples are computed inside the step from
`TrainState.teacher_params` with its own ModelConfig (it must share the tokenizer/vocabulary; its
width and depth may differ). `algo.teacher_source` picks it:

  "policy"      a frozen copy of the initial policy (the parameters RL starts from, after any SFT
                warm-up): KD then pulls the student back toward where it started;
  "checkpoint"  `teacher_checkpoint` in `teacher_checkpoint_format` ("hf" | "llama2c");
  "preset"      a randomly initialised `teacher_preset` (seed `teacher_seed`): for smoke tests.
"""
import jax
import jax.numpy as jnp

TEACHER_SOURCES = ("policy", "checkpoint", "preset")


def build_teacher(cfg, model_cfg, params):
    """-> (teacher ModelConfig, teacher params) for cfg.algo (kdrl), or (None, None)."""
    a = cfg.algo
    if a.name != "kdrl":
        return None, None
    source = a.get("teacher_source", "policy")
    if source == "policy":
        return model_cfg, jax.tree_util.tree_map(jnp.copy, params)
    if source == "checkpoint":
        from rlpt.models.loaders import load_hf_checkpoint, load_llama2c
        load = load_hf_checkpoint if a.teacher_checkpoint_format == "hf" else load_llama2c
        t_cfg, t_params = load(a.teacher_checkpoint, dtype=cfg.model.dtype)
        return t_cfg, jax.tree_util.tree_map(jnp.asarray, t_params)
    if source == "preset":
        from rlpt.models import get_model_config, init_params
        t_cfg = get_model_config(a.teacher_preset, dtype=cfg.model.dtype)
        return t_cfg, init_params(t_cfg, jax.random.PRNGKey(int(a.get("teacher_seed", 1))))
    raise ValueError(f"algo.teacher_source={source!r}; known: {list(TEACHER_SOURCES)}")

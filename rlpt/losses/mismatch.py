"""The sampler / trainer mismatch: its measures and the per-token weights that correct for it.

The sampler's log-probs of its own tokens (the KV-cache decode, `out.logprobs`) and the
trainer's (the teacher-forced forward of the same rows, same parameters, same temperature:
rlpt.sampling, rlpt.logprobs) are the same function computed two ways; in float32 they agree to
rounding, in bfloat16 (`model.dtype`) or under any other difference of kernels they do not, and
the policy gradient is then off-policy without knowing it. With the per-token log-ratio

    d = logp_trainer - logp_sampler,   r = exp(d) = pi_trainer(y_t) / pi_sampler(y_t)

where `logp_trainer` is the trainer's log-prob under the PRE-update parameters (the loss's
`old_logp`), over the completion tokens of the mask (model tokens only: a tool rollout's
environment tokens have mask 0, rlpt.envs.tool_rollout):

- `mismatch_metrics`: `mismatch_logp_abs_mean` / `_max` of |d|, and `mismatch_kl`, the k3
  estimator of Schulman's "Approximating KL divergence" (2020) on the sampled tokens,
  `r - 1 - log r` (= `kl(logp_sampler, logp_trainer, "k3")` of rlpt.losses.kl), mask-averaged:
  an unbiased, non-negative estimate of KL(pi_sampler || pi_trainer) per token, since the tokens
  were drawn from the sampler;
- `truncated_is_weight`: TIS, `min(r, C)` (Yao, Liu et al., "Your Efficient RL Framework
  Secretly Brings You Off-Policy RL Training", 2025; verl / TRL; C = 2);
- `band_mask`: masked IS / IcePop, 1 where `low <= r <= high` else 0 (Ling team, Ring-1T,
  arXiv:2510.18855: [0.5, 2]);
- `sequence_band_mask`: geometric sequence-level masking, 1 for a sequence whose geometric-mean
  ratio `exp(mask-mean_t d)` lies in [low, high], else 0 for all its tokens (Liu, Li et al.,
  "When Speed Kills Stability: Demystifying RL Collapse from the Training-Inference Mismatch",
  2025; verl's `rollout_rs="geometric"`, its band 1.001^-1 .. 1.001).

The weights are constants of the loss (stop-gradient inputs); the pieces of rlpt.pieces.mismatch
turn them on. Every function is pure and shape-preserving: `[N, T]` arrays, `mask` float 0/1.
"""
import jax
import jax.numpy as jnp

from rlpt.losses.aggregation import masked_mean
from rlpt.losses.kl import kl_k3


def mismatch_metrics(trainer_logp, sampler_logp, mask) -> dict:
    """`{mismatch_logp_abs_mean, mismatch_logp_abs_max, mismatch_kl}` over the tokens of
    `mask` (module doc); stop-gradient."""
    trainer_logp = jax.lax.stop_gradient(trainer_logp)
    m = mask.astype(jnp.float32)
    d = trainer_logp.astype(jnp.float32) - sampler_logp.astype(jnp.float32)
    absd = jnp.where(m > 0, jnp.abs(d), 0.0)
    return {"mismatch_logp_abs_mean": masked_mean(absd, m),
            "mismatch_logp_abs_max": jnp.max(absd),
            "mismatch_kl": masked_mean(kl_k3(sampler_logp, trainer_logp), m)}


def truncated_is_weight(log_ratio, cap):
    """TIS: `min(exp(log_ratio), cap)` (module doc)."""
    return jnp.minimum(jnp.exp(log_ratio), cap)


def band_mask(log_ratio, low, high):
    """1.0 where `low <= exp(log_ratio) <= high`, else 0.0 (masked IS / IcePop)."""
    r = jnp.exp(log_ratio)
    return ((r >= low) & (r <= high)).astype(jnp.float32)


def sequence_log_ratio(log_ratio, mask):
    """`mask-mean_t log_ratio` per row [N]: the log of the geometric-mean ratio."""
    return masked_mean(log_ratio, mask.astype(log_ratio.dtype), axis=-1)


def sequence_band_mask(log_ratio, mask, low, high):
    """[N] 1.0 for a row whose geometric-mean ratio `exp(mask-mean_t log_ratio)` lies in
    [low, high], else 0.0 (an empty row has ratio 1)."""
    r = jnp.exp(sequence_log_ratio(log_ratio, mask))
    return ((r >= low) & (r <= high)).astype(jnp.float32)

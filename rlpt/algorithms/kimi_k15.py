"""Kimi k1.5 (arXiv:2501.12599): online mirror descent (its loss) with the length penalty as the
reward shaping `kimi_length_penalty`: `r += length_penalty_weight * len_reward` (within each
group, objectives.md §2).

The paper warms the penalty up: "standard policy optimization without length penalty, followed
by a constant length penalty for the rest of training" (§2.3.3). `length_penalty_start` is that
switch (a dynamic hyperparameter): the penalty is 0 for RL steps 0 .. start-1 and
`length_penalty_weight` from then on (default 0: from the first step)."""
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import group_rows
from rlpt.algorithms.base import Algorithm, Piece, correct_of
from rlpt.losses.aggregation import completion_mask, masked_mean
from rlpt.losses.policy import kl_tokens, nonempty_mean, resolve, sub_entropy

# the loss builds its own baseline from batch["rewards"]; "dr_grpo" (r - mean) is the matching
# advantage for logging. tau: not in spec.
DEFAULTS = dict(advantage="dr_grpo", tau=1.0, normalize_2tau=False, length_penalty_weight=1.0,
                length_penalty_start=0, shaping=("kimi_length_penalty",))
DYNAMIC = frozenset({"tau", "length_penalty_weight", "length_penalty_start"})


def kimi_length_reward(lengths_N, correct_N, group_size):
    """Kimi k1.5 (arXiv:2501.12599) length reward within each group:
    `lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)`; `lambda_i` if correct else
    `min(0, lambda_i)`; all 0 when max_len == min_len."""
    len_BG = group_rows(jnp.asarray(lengths_N, jnp.float32), group_size)
    lo = jnp.min(len_BG, axis=1, keepdims=True)
    span = jnp.max(len_BG, axis=1, keepdims=True) - lo
    lam_BG = jnp.where(span > 0, 0.5 - (len_BG - lo) / jnp.where(span > 0, span, 1.0), 0.0)
    lam_N = lam_BG.reshape(-1)
    return jnp.where(jnp.asarray(correct_N) > 0, lam_N, jnp.minimum(0.0, lam_N))



def length_penalty(spec, state, r_N, raw_N, out, c):
    on = (jnp.asarray(state.step) >= c.get("length_penalty_start", 0)).astype(jnp.float32)
    weight = on * c.get("length_penalty_weight", 1.0)
    return r_N + weight * kimi_length_reward(out.lengths, correct_of(raw_N, c), spec.G), {}


LENGTH_PENALTY = registry.register("shaping", "kimi_length_penalty")(Piece(
    "kimi_length_penalty", dynamic=frozenset({"length_penalty_weight", "length_penalty_start"}),
    shape=length_penalty))


@registry.register("loss", "kimi_k15")
def kimi_k15_loss(batch, cfg):
    """Kimi k1.5 online mirror descent (arXiv:2501.12599 eq. 3 with tau log Z ~ mean reward):
    `L = mean_j (r_j - mean_g r - tau (logpi(y_j) - logpi_old(y_j)))^2`, sequence log-probs summed
    over completion tokens. Its gradient is `2 tau [-(r_j - r_mean) grad logpi
    + (tau/2) grad (log ratio)^2]`; `normalize_2tau=True` divides L by 2 tau so the gradient equals
    the paper's expression exactly. Uses `batch["rewards"]` (length reward already added)."""
    c = resolve(cfg, "kimi_k15", DEFAULTS)
    mask_NT = completion_mask(batch)
    r_BG = batch["rewards"].reshape(-1, c.group_size)
    centered_N = (r_BG - jnp.mean(r_BG, axis=1, keepdims=True)).reshape(-1)
    log_ratio_NT = batch["logp"] - batch["old_logp"]
    seq_lr_N = jnp.sum(log_ratio_NT * mask_NT, axis=-1)
    loss = nonempty_mean(jnp.square(centered_N - c.tau * seq_lr_N), mask_NT)
    if c.normalize_2tau:
        loss = loss / (2.0 * c.tau)
    metrics = {"loss": loss, "clip_frac": jnp.zeros_like(loss),
               "ratio_mean": masked_mean(jnp.exp(log_ratio_NT), mask_NT),
               "seq_log_ratio_mean": nonempty_mean(seq_lr_N, mask_NT)}
    kl_NT = kl_tokens(batch, c)
    if kl_NT is not None:
        metrics["kl"] = masked_mean(kl_NT, mask_NT)
    metrics["loss"] = loss = sub_entropy(loss, batch, c, mask_NT, metrics)
    return loss, metrics



ALGORITHM = registry.register("algorithm", "kimi_k15")(Algorithm(
    "kimi_k15", kimi_k15_loss, defaults=DEFAULTS, dynamic=DYNAMIC))

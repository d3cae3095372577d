"""Preference-optimisation math shared by several algorithms, as pure functions of sequence
log-probs (no model inside). Each algorithm's own loss, paper defaults and hooks live in its file
(rlpt/algorithms/dpo.py, ipo.py, cdpo.py, rdpo.py, simpo.py, pre_dpo.py, online_dpo.py,
drpo.py); spec: ../shared/spec/objectives.md section 4. Every registered preference loss has the
signature `loss_fn(batch: dict, cfg) -> (loss_scalar, metrics_dict)`; `cfg` is overlaid on the
algorithm's DEFAULTS (`resolve_config`), so it may set only the fields it changes or be None.

Batch keys (all sequence log-probs are SUMS over response tokens):

| key | shape | used by |
|---|---|---|
| `logp_w`, `logp_l` | [B] | policy log-prob of chosen / rejected response (all pairwise losses) |
| `ref_w`, `ref_l` | [B] | reference log-probs (dpo, ipo, cdpo, rdpo) |
| `guide_w`, `guide_l` | [B] | guide-model log-probs, used as the reference by pre_dpo |
| `len_w`, `len_l` | [B] | response lengths in tokens (simpo; ipo with `length_normalize`) |
| `mask` | [B] | optional pair weights (1 keep, 0 drop), e.g. the validity mask of online pairs |
| DRPO keys | | see rlpt.algorithms.drpo.drpo_loss |

Reduction: the batch loss is `sum(l * mask) / max(sum(mask), 1)` (a plain mean without `mask`).

Per-pair gradient weight. Each pairwise loss is a function of one margin variable `h`
(`h = (logp_w - ref_w) - (logp_l - ref_l)`; for SimPO the length-normalised log-prob difference).
The logged `grad_weight` is `-(1/beta) dl/dh` (IPO has no beta: `-dl/dh`), so that
`grad l = -beta * grad_weight * grad h`. For DPO it is `sigmoid(-beta h)`: how much a pair still
pushes, which is the quantity DPO's paper discusses and Pre-DPO re-weights.

Also here, shared by online DPO and the VRPO reward model: best-vs-worst pairs of N scored
samples per prompt (`best_worst_pairs`, `take_samples`), with static shapes.
"""
import types

import jax
import jax.numpy as jnp


def resolve_config(cfg, defaults, name=None) -> types.SimpleNamespace:
    """`defaults` (a dict, ConfigDict or attribute object; plus `name` when given) overlaid with
    the fields `cfg` sets (ConfigDict, AlgoConfig, dict, attribute object or None), so a config
    may set only the fields it changes."""
    def items(x):
        if x is None:
            return {}
        return dict(x.items()) if hasattr(x, "items") else dict(vars(x))

    fields = items(defaults)
    if name is not None:
        fields["name"] = name
    fields.update({k: v for k, v in items(cfg).items() if not k.startswith("_")})
    return types.SimpleNamespace(**fields)


def implicit_margin(logp_w, logp_l, ref_w, ref_l):
    """`h = (logp_w - ref_w) - (logp_l - ref_l)`: difference of implicit rewards divided by beta."""
    return (logp_w - ref_w) - (logp_l - ref_l)


def margin_of(batch):
    """The implicit margin `h` of a pairwise batch (`logp_w, logp_l, ref_w, ref_l`)."""
    return implicit_margin(batch["logp_w"], batch["logp_l"], batch["ref_w"], batch["ref_l"])


def masked_mean(x, mask=None):
    """`sum(x * mask) / max(sum(mask), 1)` over all axes; a plain mean when mask is None."""
    if mask is None:
        return jnp.mean(x)
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def pairwise_result(losses, weights, h, batch, beta):
    """(loss, metrics) of per-pair `losses`, gradient `weights` and margins `h`: the masked mean
    loss, `grad_weight`, `margin`, `accuracy` (h > 0) and, with a beta and a reference, the
    implicit rewards `chosen_reward`, `rejected_reward`."""
    mask = batch.get("mask")
    loss = masked_mean(losses, mask)
    metrics = {
        "loss": loss,
        "grad_weight": masked_mean(weights, mask),
        "margin": masked_mean(h, mask),
        "accuracy": masked_mean((h > 0).astype(losses.dtype), mask),
    }
    if beta is not None and "ref_w" in batch:
        metrics["chosen_reward"] = masked_mean(beta * (batch["logp_w"] - batch["ref_w"]), mask)
        metrics["rejected_reward"] = masked_mean(beta * (batch["logp_l"] - batch["ref_l"]), mask)
    return loss, metrics


# ----------------------------------------------------------------------------------------------
# Pairs from N scored samples per prompt (online DPO, arXiv 2506.21495; VRPO's labelled pair)


def best_worst_pairs(rewards, sample_mask=None, key=None):
    """Online-DPO pairs from N scored samples per prompt: `rewards [B, N]` -> chosen, rejected,
    valid, each `[B]`.

    chosen = a highest-reward sample, rejected = a lowest-reward sample. Ties are broken by the
    lowest index (argmax/argmin return the first) unless `key` is given, in which case uniformly at
    random among the tied samples (the alternative reading of the paper, which picks a random
    correct and a random incorrect sample for verifiable rewards). A prompt is valid only if
    its best reward is strictly above its worst (no contrast -> dropped: use `valid` as the
    loss `mask`). `sample_mask [B, N]` (optional) excludes samples.
    """
    r = rewards.astype(jnp.float32)
    m = jnp.ones_like(r, dtype=bool) if sample_mask is None else sample_mask > 0
    best_val = jnp.max(jnp.where(m, r, -jnp.inf), axis=-1, keepdims=True)
    worst_val = jnp.min(jnp.where(m, r, jnp.inf), axis=-1, keepdims=True)
    is_best = m & (r == best_val)
    is_worst = m & (r == worst_val)
    if key is None:
        chosen, rejected = jnp.argmax(is_best, axis=-1), jnp.argmax(is_worst, axis=-1)
    else:
        k1, k2 = jax.random.split(key)
        u1, u2 = jax.random.uniform(k1, r.shape), jax.random.uniform(k2, r.shape)
        chosen = jnp.argmax(jnp.where(is_best, u1, -1.0), axis=-1)
        rejected = jnp.argmax(jnp.where(is_worst, u2, -1.0), axis=-1)
    valid = (best_val > worst_val)[..., 0]
    return chosen.astype(jnp.int32), rejected.astype(jnp.int32), valid


def take_samples(x, idx):
    """Selects one sample per prompt: `x [B, N, ...]`, `idx [B]` -> `[B, ...]`."""
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 1))
    return jnp.take_along_axis(x, idx, axis=1)[:, 0]

"""Preference-optimisation losses as pure functions of sequence log-probs (no model inside).

Spec: ../shared/spec/objectives.md section 4. Every registered loss has the signature
`loss_fn(batch: dict, cfg: ConfigDict) -> (loss_scalar, metrics_dict)`. `cfg` is overlaid on
`default_preference_config(name)` (paper defaults), so it may set only the fields it changes or be
None.

Batch keys (all sequence log-probs are SUMS over response tokens):

| key | shape | used by |
|---|---|---|
| `logp_w`, `logp_l` | [B] | policy log-prob of chosen / rejected response (all pairwise losses) |
| `ref_w`, `ref_l` | [B] | reference log-probs (dpo, ipo, cdpo, rdpo) |
| `guide_w`, `guide_l` | [B] | guide-model log-probs, used as the reference by pre_dpo |
| `len_w`, `len_l` | [B] | response lengths in tokens (simpo; ipo with `length_normalize`) |
| `mask` | [B] | optional pair weights (1 keep, 0 drop), e.g. the validity mask of online pairs |
| DRPO keys | | see `drpo_loss` |

Reduction: the batch loss is `sum(l * mask) / max(sum(mask), 1)` (a plain mean without `mask`).

Per-pair gradient weight. Each pairwise loss is a function of one margin variable `h`
(`h = (logp_w - ref_w) - (logp_l - ref_l)`; for SimPO the length-normalised log-prob difference).
The logged `grad_weight` is `-(1/beta) dl/dh` (IPO has no beta: `-dl/dh`), so that
`grad l = -beta * grad_weight * grad h`. For DPO it is `sigmoid(-beta h)`: how much a pair still
pushes, which is the quantity DPO's paper discusses and Pre-DPO re-weights.
"""
import types

import jax
import jax.numpy as jnp
import ml_collections

from rlpt.losses.aggregation import AGG_MODES, aggregate
from rlpt.losses.kl import kl_k3
from rlpt.registry import register

IS_WEIGHT_MODES = ("clip", "self_normalized", "raw")


# ----------------------------------------------------------------------------------------------
# Config


_DEFAULTS = {
    "dpo": dict(beta=0.1),
    "pre_dpo": dict(beta=0.1),
    "ipo": dict(tau=0.1, length_normalize=False),
    "cdpo": dict(beta=0.1, eps=0.1),
    "rdpo": dict(beta=0.1, eps=0.1),
    "simpo": dict(beta=2.0, gamma=0.5),
    "drpo": dict(beta=0.04, c=2.5, b=0.5, is_weight="clip", kl_agg="seq_mean_token_sum",
                 l_norm=None),
}


def default_preference_config(name: str) -> ml_collections.ConfigDict:
    """Paper defaults for each registered preference loss (`name` as registered).

    dpo/pre_dpo/cdpo/rdpo beta=0.1 (DPO paper); cdpo/rdpo eps=0.1 (flip rate); ipo tau=0.1;
    simpo beta=2, gamma=0.5; drpo beta=0.04, c=2.5, b=0.5, is_weight="clip" (spec section 4).
    """
    if name not in _DEFAULTS:
        raise KeyError(f"no preference loss {name!r}; known: {sorted(_DEFAULTS)}")
    return ml_collections.ConfigDict(dict(name=name, **_DEFAULTS[name]))


def resolve_config(cfg, defaults: ml_collections.ConfigDict) -> types.SimpleNamespace:
    """`defaults` overlaid with the fields `cfg` sets (ConfigDict, dict, attribute object or None),
    so a config may set only the fields it changes (as rlpt.losses.defaults.resolve does)."""
    fields = dict(defaults.items())
    if cfg is not None:
        items = cfg.items() if hasattr(cfg, "items") else vars(cfg).items()
        fields.update({k: v for k, v in items if not k.startswith("_")})
    return types.SimpleNamespace(**fields)


def _cfg(cfg, name):
    return resolve_config(cfg, default_preference_config(name))


# ----------------------------------------------------------------------------------------------
# Per-pair losses: arrays in, (losses [B], grad_weights [B]) out.


def implicit_margin(logp_w, logp_l, ref_w, ref_l):
    """`h = (logp_w - ref_w) - (logp_l - ref_l)`: difference of implicit rewards divided by beta."""
    return (logp_w - ref_w) - (logp_l - ref_l)


def dpo_losses(h, beta):
    """DPO (arXiv 2305.18290): `l = -log sigmoid(beta h)`; weight `sigmoid(-beta h)`."""
    return -jax.nn.log_sigmoid(beta * h), jax.nn.sigmoid(-beta * h)


def ipo_losses(h, tau):
    """IPO (arXiv 2310.12036, eq. 17): `l = (h - 1/(2 tau))**2`; weight `-dl/dh = 1/tau - 2h`."""
    target = 1.0 / (2.0 * tau)
    return (h - target) ** 2, -2.0 * (h - target)


def cdpo_losses(h, beta, eps):
    """Conservative DPO / label smoothing (arXiv 2403.00409 discusses it as cDPO):
    `l = -(1-eps) log sig(beta h) - eps log sig(-beta h)`:
    DPO against a label flipped with probability eps.
    Weight `(1-eps) sig(-beta h) - eps sig(beta h) = 1 - eps - sig(beta h)`: negative once
    `sig(beta h) > 1 - eps`, where the loss pulls the margin back (it does not grow without bound).
    """
    losses = -(1.0 - eps) * jax.nn.log_sigmoid(beta * h) - eps * jax.nn.log_sigmoid(-beta * h)
    weights = (1.0 - eps) * jax.nn.sigmoid(-beta * h) - eps * jax.nn.sigmoid(beta * h)
    return losses, weights


def rdpo_losses(h, beta, eps):
    """Robust DPO (Chowdhury et al., arXiv 2403.00409, eq. 8): the unbiased loss under labels
    flipped with known rate eps < 1/2:
    `l = (-(1-eps) log sig(beta h) + eps log sig(-beta h)) / (1 - 2 eps)`;
    weight `((1-eps) sig(-beta h) + eps sig(beta h)) / (1 - 2 eps)`.
    """
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"robust DPO needs 0 <= eps < 0.5, got eps={eps}")
    norm = 1.0 - 2.0 * eps
    losses = (-(1.0 - eps) * jax.nn.log_sigmoid(beta * h) + eps * jax.nn.log_sigmoid(-beta * h))
    weights = (1.0 - eps) * jax.nn.sigmoid(-beta * h) + eps * jax.nn.sigmoid(beta * h)
    return losses / norm, weights / norm


def simpo_losses(logp_w, logp_l, len_w, len_l, beta, gamma):
    """SimPO (arXiv 2405.14734, eq. 6), reference-free:
    `u = logp_w/|y_w| - logp_l/|y_l|`, `l = -log sig(beta u - gamma)`; weight `sig(gamma - beta u)`.
    `gamma` is the absolute margin (the released code's `gamma_beta_ratio` is gamma / beta).
    Lengths below 1 are treated as 1.
    """
    u = simpo_margin(logp_w, logp_l, len_w, len_l)
    z = beta * u - gamma
    return -jax.nn.log_sigmoid(z), jax.nn.sigmoid(-z)


def simpo_margin(logp_w, logp_l, len_w, len_l):
    """Length-normalised log-prob difference `logp_w/|y_w| - logp_l/|y_l|`."""
    return logp_w / jnp.maximum(len_w, 1) - logp_l / jnp.maximum(len_l, 1)


# ----------------------------------------------------------------------------------------------
# Registered losses: (batch, cfg) -> (loss, metrics)


def masked_mean(x, mask=None):
    """`sum(x * mask) / max(sum(mask), 1)` over all axes; a plain mean when mask is None."""
    if mask is None:
        return jnp.mean(x)
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _pairwise_result(losses, weights, h, batch, beta):
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


def _h(batch):
    return implicit_margin(batch["logp_w"], batch["logp_l"], batch["ref_w"], batch["ref_l"])


@register("loss", "dpo")
def dpo_loss(batch, cfg):
    """DPO (arXiv 2305.18290): mean of `-log sigmoid(beta h)`.
    Keys: logp_w, logp_l, ref_w, ref_l (optional mask)."""
    cfg = _cfg(cfg, "dpo")
    h = _h(batch)
    losses, weights = dpo_losses(h, cfg.beta)
    return _pairwise_result(losses, weights, h, batch, cfg.beta)


@register("loss", "pre_dpo")
def pre_dpo_loss(batch, cfg):
    """Pre-DPO (arXiv 2504.15843): DPO whose reference is a *guide* model.

    Procedure: (1) train a guide with DPO (or SimPO) starting from the SFT model; (2) restart
    from the SFT model and run DPO on the same data with `ref := guide`. The loss of stage (2) is
    this function: DPO with `guide_w, guide_l` (the guide's sequence log-probs) in place of
    `ref_w, ref_l`, so the per-pair weight becomes `sigmoid(-beta h_guide)`: pairs the guide
    already separates well get small weight. With guide == SFT it is exactly DPO.
    """
    for key in ("guide_w", "guide_l"):
        if key not in batch:
            raise KeyError(f"pre_dpo needs batch[{key!r}] (guide-model sequence log-probs)")
    guided = dict(batch, ref_w=batch["guide_w"], ref_l=batch["guide_l"])
    return dpo_loss(guided, _cfg(cfg, "pre_dpo"))


@register("loss", "ipo")
def ipo_loss(batch, cfg):
    """IPO (arXiv 2310.12036): mean of `(h - 1/(2 tau))**2`.

    `cfg.length_normalize=False` (default, the spec's reading) uses sequence-summed log-probs;
    True divides each log-prob by its response length first (`len_w`, `len_l`), as TRL's IPO does.
    """
    cfg = _cfg(cfg, "ipo")
    logp_w, logp_l, ref_w, ref_l = (batch[k] for k in ("logp_w", "logp_l", "ref_w", "ref_l"))
    if cfg.length_normalize:
        n_w, n_l = jnp.maximum(batch["len_w"], 1), jnp.maximum(batch["len_l"], 1)
        logp_w, ref_w, logp_l, ref_l = logp_w / n_w, ref_w / n_w, logp_l / n_l, ref_l / n_l
    h = implicit_margin(logp_w, logp_l, ref_w, ref_l)
    losses, weights = ipo_losses(h, cfg.tau)
    return _pairwise_result(losses, weights, h, batch, None)


@register("loss", "cdpo")
def cdpo_loss(batch, cfg):
    """cDPO / label-smoothed DPO; see `cdpo_losses`. cfg: beta, eps."""
    cfg = _cfg(cfg, "cdpo")
    h = _h(batch)
    losses, weights = cdpo_losses(h, cfg.beta, cfg.eps)
    return _pairwise_result(losses, weights, h, batch, cfg.beta)


@register("loss", "rdpo")
def rdpo_loss(batch, cfg):
    """Robust DPO (arXiv 2403.00409); see `rdpo_losses`. cfg: beta, eps (< 0.5)."""
    cfg = _cfg(cfg, "rdpo")
    h = _h(batch)
    losses, weights = rdpo_losses(h, cfg.beta, cfg.eps)
    return _pairwise_result(losses, weights, h, batch, cfg.beta)


@register("loss", "simpo")
def simpo_loss(batch, cfg):
    """SimPO (arXiv 2405.14734); see `simpo_losses`. Keys: logp_w, logp_l, len_w, len_l."""
    cfg = _cfg(cfg, "simpo")
    u = simpo_margin(batch["logp_w"], batch["logp_l"], batch["len_w"], batch["len_l"])
    losses, weights = simpo_losses(
        batch["logp_w"], batch["logp_l"], batch["len_w"], batch["len_l"], cfg.beta, cfg.gamma)
    return _pairwise_result(losses, weights, u, batch, None)


# ----------------------------------------------------------------------------------------------
# DRPO


def importance_weights(logp, ref_logp, mode, c=2.5, mask=None):
    """Sequence importance weights `pi(y)/pi_ref(y)` for DRPO's IS term.

    mode "clip": `clip(ratio, 1/c, c)` (spec default, c=2.5); "self_normalized":
    `ratio_i / mean_j ratio_j` over the (masked) batch; "raw": the ratio itself.
    """
    log_ratio = logp - ref_logp
    if mode == "clip":
        if c < 1:
            raise ValueError(f"DRPO clip needs c >= 1, got c={c}")
        return jnp.clip(jnp.exp(log_ratio), 1.0 / c, c)
    if mode == "raw":
        return jnp.exp(log_ratio)
    if mode == "self_normalized":
        m = jnp.ones_like(log_ratio) if mask is None else mask.astype(log_ratio.dtype)
        shift = jnp.max(jnp.where(m > 0, log_ratio, -jnp.inf))  # cancels in the ratio
        shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
        r = jnp.exp(jnp.where(m > 0, log_ratio - shift, -jnp.inf))
        return r * jnp.sum(m) / jnp.maximum(jnp.sum(r * m), 1e-30)
    raise ValueError(f"unknown DRPO is_weight mode {mode!r}; known: {IS_WEIGHT_MODES}")


@register("loss", "drpo")
def drpo_loss(batch, cfg):
    """DRPO surrogate (Xu et al., "Doubly Robust Alignment for LLMs", arXiv 2506.01183, the paper
    we used; spec tag [code]).

    Doubly robust estimate of the preference of pi over pi_ref, maximised minus beta*KL:
      `psi = mean_i [ E_{y~pi} g(x_i, y, y2_i) + w_i (Z_i - g(x_i, y1_i, y2_i)) ]`.
    Surrogate minimised here (sg = stop_gradient):
      `L = - mean_i sg[w_i (Z_i - g_i)] logpi(y1_i)
           - mean_{i,m} sg[g_im - b] logpi(y*_im)
           + beta * KL_k3(y*)`
    with `w_i = pi(y1_i)/pi_ref(y1_i)` by `cfg.is_weight` ("clip" to [1/c, c], "self_normalized",
    "raw"), `y*_im` the M online samples of prompt i and b a constant baseline (REINFORCE).

    Batch keys:
      logp_y1, ref_y1 [B]  sequence log-probs of the dataset response y1 (policy, reference)
      Z [B]                observed preference of y1 over y2 (1 / 0, or a probability)
      g_y1 [B]             preference model g(x, y1, y2) in [0, 1]
      g_online [B, M]      g(x, y*_im, y2_i) for the M online samples
      logp_online_tok [B, M, T], ref_online_tok [B, M, T], mask_online [B, M, T]
                           per-token policy / reference log-probs of the online samples and their
                           completion mask; the sequence log-prob logpi(y*) is the masked sum, and a
                           sample with an all-zero mask is absent (skipped everywhere)
      mask [B]             optional pair mask
    KL: k3 per token with verl's clamp (rlpt.losses.kl), aggregated over the B*M online samples
    by `cfg.kl_agg` (rlpt.losses.aggregation modes): "seq_mean_token_sum" (default: the mean
    over samples of the sequence KL, as the released code sums k3 over tokens), or a per-token
    reading of the spec's "mean k3" ("token_mean", "seq_mean_token_mean", or
    "seq_mean_token_sum_norm" with `cfg.l_norm`).
    Note: the released code also symmetrises over (y1, y2) and averages g over both comparators;
    pass such a g_online / doubled batch to get that variant.
    The returned loss value is the surrogate; `metrics["dr_estimate"]` is psi itself.
    """
    cfg = _cfg(cfg, "drpo")
    if cfg.is_weight not in IS_WEIGHT_MODES:
        raise ValueError(f"unknown DRPO is_weight mode {cfg.is_weight!r}; known: {IS_WEIGHT_MODES}")
    mask = batch.get("mask")
    logp_y1, ref_y1 = batch["logp_y1"], batch["ref_y1"]
    w = importance_weights(logp_y1, ref_y1, cfg.is_weight, cfg.c, mask)
    is_coef = jax.lax.stop_gradient(w * (batch["Z"] - batch["g_y1"]))
    is_term = masked_mean(is_coef * logp_y1, mask)

    tok_mask = batch["mask_online"].astype(batch["logp_online_tok"].dtype)
    logp_online = jnp.sum(batch["logp_online_tok"] * tok_mask, axis=-1)  # [B, M]
    present = (jnp.sum(tok_mask, axis=-1) > 0).astype(logp_online.dtype)  # [B, M]
    sample_mask = present if mask is None else present * mask[:, None].astype(present.dtype)
    g_online = batch["g_online"]
    dm_coef = jax.lax.stop_gradient(g_online - cfg.b)
    dm_term = masked_mean(dm_coef * logp_online, sample_mask)

    if cfg.kl_agg not in AGG_MODES:
        raise ValueError(f"unknown DRPO kl_agg {cfg.kl_agg!r}; known: {list(AGG_MODES)}")
    kl_tok = kl_k3(batch["logp_online_tok"], batch["ref_online_tok"], clamp=True)
    t = kl_tok.shape[-1]
    kl = aggregate(kl_tok.reshape(-1, t), (tok_mask * sample_mask[..., None]).reshape(-1, t),
                   cfg.kl_agg, cfg.l_norm)
    loss = -is_term - dm_term + cfg.beta * kl

    dr = masked_mean(g_online, sample_mask) + masked_mean(is_coef, mask)
    metrics = {
        "loss": loss,
        "dr_estimate": jax.lax.stop_gradient(dr),
        "is_coef": masked_mean(is_coef, mask),
        "is_weight": masked_mean(jax.lax.stop_gradient(w), mask),
        "g_online": masked_mean(g_online, sample_mask),
        "kl": jax.lax.stop_gradient(kl),
    }
    if cfg.is_weight == "clip":
        raw_ratio = jnp.exp(jax.lax.stop_gradient(logp_y1 - ref_y1))
        clipped = (raw_ratio < 1.0 / cfg.c) | (raw_ratio > cfg.c)
        metrics["is_clip_frac"] = masked_mean(clipped.astype(w.dtype), mask)
    return loss, metrics

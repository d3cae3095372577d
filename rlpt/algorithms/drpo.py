"""DRPO (Xu et al., "Doubly Robust Alignment for LLMs", arXiv 2506.01183; spec tag [code]):
a doubly robust estimate of the preference of pi over pi_ref, maximised minus beta * KL.

In the step: (y1, y2) = the dataset pair in a random order, Z = 1 when y1 is the chosen one; M
online samples y* ~ pi (`algo.num_online`, 2; the current params); the preference model g is
`algo.g`: "task_reward" -> `g(y, y') = clip(0.5 + 0.5 (R(y) - R(y')), 0, 1)` (win 1, tie 0.5,
loss 0 for 0/1 rewards), or "reward_model" -> `sigmoid(r(x,y) - r(x,y'))` with a Bradley-Terry
RM (`cfg.rm`) trained first in the same run (phase "rm", the `models` hook) and frozen as
"reward_model". Defaults beta 0.04, c 2.5, b 0.5, is_weight "clip". Held-out metric: DPO's.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.algorithms.dpo import dpo_pair_metrics
from rlpt.errors import UserError
from rlpt.losses.aggregation import AGG_MODES, aggregate
from rlpt.losses.kl import kl_k3
from rlpt.losses.preference import masked_mean, resolve_config
from rlpt.state import model_params, reference_params

DEFAULTS = dict(beta=0.04, c=2.5, b=0.5, is_weight="clip", kl_agg="seq_mean_token_sum",
                l_norm=None, num_online=2, g="task_reward")
DYNAMIC = frozenset({"beta", "c", "b"})
IS_WEIGHT_MODES = ("clip", "self_normalized", "raw")
G_KINDS = ("task_reward", "reward_model")


def importance_weights(logp, ref_logp, mode, c=2.5, mask=None):
    """Sequence importance weights `pi(y)/pi_ref(y)` for DRPO's IS term.

    mode "clip": `clip(ratio, 1/c, c)` (spec default, c=2.5; a Python c < 1 raises);
    "self_normalized": `ratio_i / mean_j ratio_j` over the (masked) batch; "raw": the ratio.
    """
    log_ratio = logp - ref_logp
    if mode == "clip":
        if isinstance(c, (int, float)) and c < 1:
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


@registry.register("loss", "drpo")
def drpo_loss(batch, cfg):
    """DRPO surrogate (module doc).

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
    cfg = resolve_config(cfg, DEFAULTS, "drpo")
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


# ------------------------------------------------------------------------ hooks of the step

def task_preference(r_a, r_b):
    """g from task rewards: `clip(0.5 + 0.5 (R_a - R_b), 0, 1)`."""
    return jnp.clip(0.5 + 0.5 * (r_a - r_b), 0.0, 1.0)


def preference(spec, state, batch, c, y, y_mask, y2, y2_mask, r_y=None, r_y2=None):
    """Preference model g(x, y, y2) for rows of y (prompt rows repeated to match)."""
    if c.g == "task_reward":
        return task_preference(r_y, r_y2)
    rep = y.shape[0] // batch["prompt"].shape[0]
    p, pm = (jnp.repeat(batch[k], rep, axis=0) for k in ("prompt", "prompt_mask"))
    s = lambda t, m: spec.rm_score(state.frozen["reward_model"], p, pm, t, m)
    return jax.nn.sigmoid(s(y, y_mask) - s(y2, y2_mask))


def drpo_data(spec, state, batch, c, key):
    """The dataset pair in a random order, M online samples, g and the reference's log-probs."""
    b, m = batch["prompt"].shape[0], spec.scfg.num_samples
    swap = jax.random.bernoulli(jax.random.fold_in(key, 2), 0.5, (b,))
    pick = lambda a, d: jnp.where(swap[:, None], d, a)
    y1, y1m = pick(batch["chosen"], batch["rejected"]), pick(batch["chosen_mask"],
                                                               batch["rejected_mask"])
    y2, y2m = pick(batch["rejected"], batch["chosen"]), pick(batch["rejected_mask"],
                                                               batch["chosen_mask"])
    out = spec.sample(model_params(state.params, state.frozen), batch["prompt"],
                      batch["prompt_mask"], jax.random.fold_in(key, 0))
    rep = lambda x: jnp.repeat(x, m, axis=0)
    online, online_mask = out.tokens, out.mask.astype(jnp.int32)
    r_y = r_y2 = r_1 = r_2 = None
    if c.g == "task_reward":
        tgt, tl = batch["target"], batch["target_len"]
        r_y = spec.task_reward(online, online_mask, rep(tgt), rep(tl))[0]
        r_1, r_2 = (spec.task_reward(t, mk, tgt, tl)[0] for t, mk in ((y1, y1m), (y2, y2m)))
        r_y2 = rep(r_2)
    g_online = preference(spec, state, batch, c, online, online_mask, rep(y2), rep(y2m), r_y,
                          r_y2)
    g_y1 = preference(spec, state, batch, c, y1, y1m, y2, y2m, r_1, r_2)
    ref = reference_params(state.frozen)
    ref_y1, _ = spec.sequence_logprobs(ref, batch["prompt"], batch["prompt_mask"], y1, y1m)
    _, ref_tok = spec.sequence_logprobs(ref, rep(batch["prompt"]), rep(batch["prompt_mask"]),
                                        online, online_mask)
    data = {"prompt": batch["prompt"], "prompt_mask": batch["prompt_mask"], "y1": y1,
            "y1_mask": y1m, "online": online, "online_mask": online_mask,
            "Z": 1.0 - swap.astype(jnp.float32), "g_y1": g_y1,
            "g_online": g_online.reshape(b, m),
            "ref_y1": ref_y1, "ref_online_tok": ref_tok.reshape(b, m, -1)}
    data = jax.tree_util.tree_map(jax.lax.stop_gradient, data)
    metrics = {"online_len": out.lengths.astype(jnp.float32).mean()}
    if r_y is not None:
        metrics["online_reward"] = r_y.mean()
    return data, metrics, {}


def drpo_loss_inputs(spec, params, data, c):
    """Policy log-probs of y1 and per-token ones of the online samples at `params`."""
    b, m = data["g_online"].shape
    rep = lambda x: jnp.repeat(x, m, axis=0)
    logp_y1, _ = spec.sequence_logprobs(params, data["prompt"], data["prompt_mask"], data["y1"],
                                        data["y1_mask"])
    _, tok = spec.sequence_logprobs(params, rep(data["prompt"]), rep(data["prompt_mask"]),
                                    data["online"], data["online_mask"])
    return {"logp_y1": logp_y1, "ref_y1": data["ref_y1"], "Z": data["Z"], "g_y1": data["g_y1"],
            "g_online": data["g_online"], "logp_online_tok": tok.reshape(b, m, -1),
            "ref_online_tok": data["ref_online_tok"],
            "mask_online": data["online_mask"].reshape(b, m, -1)}


def frozen_roles(c):
    return ("reference",) + (("reward_model",) if c.g == "reward_model" else ())


def reward_model_phase(cfg, trainer):
    """With g = "reward_model": the RM of `cfg.rm`, trained first (phase "rm")."""
    if resolve_config(cfg.algo, DEFAULTS).g != "reward_model":
        return {}
    return {"reward_model": trainer.train_reward_model()}


def validate(cfg):
    a = resolve_config(cfg.algo, DEFAULTS)
    if a.g not in G_KINDS:
        raise UserError(f"config algo.g: {a.g!r}; known: {G_KINDS}")
    if a.is_weight not in IS_WEIGHT_MODES:
        raise UserError(f"config algo.is_weight: {a.is_weight!r}; known: {IS_WEIGHT_MODES}")
    if a.num_online < 1:
        raise UserError("config algo.num_online: must be >= 1")


ALGORITHM = registry.register("algorithm", "drpo")(Algorithm(
    "drpo", drpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference", validate=validate,
    trainer_hooks=dict(frozen_roles=frozen_roles, num_samples=lambda c: c.num_online,
                       needs_task_reward=lambda c: c.g == "task_reward", prepare=drpo_data,
                       loss_inputs=drpo_loss_inputs, eval_metrics=dpo_pair_metrics,
                       models=reward_model_phase)))

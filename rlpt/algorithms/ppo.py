"""PPO with GAE (arXiv:1707.06347, 1506.02438): a value head beside the policy.

The value head is a Dense(1) (kernel [D, 1], bias [1]) on the policy's final (normed) hidden
state, stored as the subtree `params["value_head"]` and optimised jointly with the policy (one
optimizer over the whole `params`). `V_t` is read at the column that predicts completion token t,
the value of the state before token t. By default the value loss also trains the shared trunk
(`value_trunk_grad=True`, a TRL-style value-head model); False detaches the hidden states so only
the head learns from the value loss.

Targets: token rewards `r_t = -kl_coef (old_logp_t - ref_logp_t)` plus the sequence score on the
last completion token (InstructGPT), GAE with `gamma`, `lam` over the old values; returns
`R_t = A_t + V_old_t` (unwhitened advantages); the loss clips `V` to `V_old +- cliprange_value`.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.advantages import gae, kl_penalized_token_rewards
from rlpt.algorithms.base import Algorithm, policy_loss_batch
from rlpt.logprobs import sequence_outputs
from rlpt.losses.aggregation import aggregate, completion_mask, masked_mean
from rlpt.losses.policy import clip_objective, clipped_value_token_loss, resolve
from rlpt.state import model_params


# vf_coef / cliprange_value 0.5 / 0.2: not in spec (baselines)
DEFAULTS = dict(advantage="gae", loss_agg="token_mean", dual_clip=3.0, vf_coef=0.5,
                cliprange_value=0.2, gamma=1.0, lam=1.0, kl_coef=0.0, whiten=True, group_size=1,
                value_trunk_grad=True)
DYNAMIC = frozenset({"vf_coef", "cliprange_value", "gamma", "lam", "kl_coef"})


@registry.register("loss", "ppo")
def ppo_loss(batch, cfg):
    """PPO (arXiv:1707.06347): clipped surrogate (eps 0.2, dual clip c=3 for A<0, verl) with GAE
    advantages, token_mean; plus `vf_coef * 0.5 * aggregate(clipped value loss)` when
    `values/old_values/returns` are in the batch (cliprange_value default 0.2)."""
    c = resolve(cfg, "ppo", DEFAULTS)
    loss, metrics = clip_objective(batch, c)
    if "values" in batch:
        mask_NT = completion_mask(batch)
        vf_NT, vclip_NT = clipped_value_token_loss(batch["values"], batch["old_values"],
                                                   batch["returns"], c.cliprange_value)
        vf = 0.5 * aggregate(vf_NT, mask_NT, c.loss_agg, c.l_norm)
        loss = loss + c.vf_coef * vf
        metrics.update(vf_loss=vf, vf_clip_frac=masked_mean(vclip_NT.astype(vf.dtype), mask_NT),
                       loss=loss)
    return loss, metrics



def init_value_head(d_model: int, rng, stddev: float = 0.02):
    return {"kernel": stddev * jax.random.normal(rng, (d_model, 1), jnp.float32),
            "bias": jnp.zeros((1,), jnp.float32)}


def value_apply(value_params, hidden_NTD):
    """`V = h @ kernel + bias` in float32 -> [N, T]."""
    h = hidden_NTD.astype(jnp.float32)
    return (h @ value_params["kernel"])[..., 0] + value_params["bias"][0]


def gae_returns(scores_N, values_NT, mask_NT, c, old_logp_NT=None, ref_logp_NT=None):
    """Returns `R = A + V` of GAE (unwhitened) for the value loss (module doc)."""
    beta = c.get("kl_coef", 0.0)
    if not c.get("kl_term"):
        old_logp_NT = ref_logp_NT = jnp.zeros_like(values_NT)
    r_NT = kl_penalized_token_rewards(scores_N, old_logp_NT, ref_logp_NT, mask_NT, beta)
    _, returns_NT = gae(r_NT, values_NT, mask_NT, c.get("gamma", 1.0), c.get("lam", 1.0))
    return returns_NT


def init(spec, params, example_batch, seed):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
    return dict(params, value_head=init_value_head(spec.model_cfg.d_model, rng)), None


def _width(rows):
    return rows["tokens"].shape[1] - rows["mask"].shape[1]


def before_advantages(spec, state, batch, out, data, c):
    """Old values from the pre-update params, GAE returns; the advantage reads the values."""
    hidden = sequence_outputs(spec.model_cfg, model_params(state.params, state.frozen),
                              data["tokens"], data["valid"], _width(data), spec.scfg.temperature,
                              with_hidden=True)["hidden"]
    old_values = jax.lax.stop_gradient(value_apply(state.params["value_head"], hidden))
    ref = data.get("ref_logp")
    returns = jax.lax.stop_gradient(gae_returns(data["rewards"], old_values, data["mask"], c,
                                                out.logprobs, ref))
    data = dict(data, old_values=old_values, returns=returns)
    return data, {"values": old_values, "ref_logp": ref}, {
        "value_mean": masked_mean(old_values, data["mask"])}


def loss_batch(spec, params, mb, mbp, c):
    o = sequence_outputs(spec.model_cfg, params, mb["tokens"], mb["valid"], _width(mb),
                         spec.scfg.temperature, with_entropy=spec.needs("entropy"),
                         with_hidden=True)
    lb = policy_loss_batch(spec, params, mb, c, o["logp"], o["entropy"])
    h = o["hidden"] if c.get("value_trunk_grad", True) else jax.lax.stop_gradient(o["hidden"])
    lb.update(values=value_apply(params["value_head"], h), old_values=mb["old_values"],
              returns=mb["returns"])
    return lb


ALGORITHM = registry.register("algorithm", "ppo")(Algorithm(
    "ppo", ppo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, init=init,
    before_advantages=before_advantages, loss_batch=loss_batch))

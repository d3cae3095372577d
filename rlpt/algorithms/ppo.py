"""PPO with GAE (arXiv:1707.06347, 1506.02438): a value head beside the policy.

The value head is a Dense(1) (kernel [D, 1], bias [1]) on the policy's final (normed) hidden
state; `V_t` is read at the column that predicts completion token t, i.e. the value of the state
before token t. Its parameters live in `TrainState.value_params` and are optimised jointly with
the policy (one optimizer over `(params, value_params)`). By default the value loss also trains
the shared trunk (`value_trunk_grad=True`, a TRL-style value-head model); `False` detaches the
hidden states so only the head learns from the value loss.

Targets: token rewards `r_t = -kl_coef (old_logp_t - ref_logp_t)` plus the sequence score on the
last completion token (InstructGPT), GAE with `gamma`, `lam` over the old values; returns
`R_t = A_t + V_old_t` (unwhitened advantages); the loss clips `V` to `V_old +- cliprange_value`.
"""
import jax
import jax.numpy as jnp

from rlpt.advantages import gae, kl_penalized_token_rewards


def init_value_head(d_model: int, rng, stddev: float = 0.02):
    return {"kernel": stddev * jax.random.normal(rng, (d_model, 1), jnp.float32),
            "bias": jnp.zeros((1,), jnp.float32)}


def value_apply(value_params, hidden_NTD):
    """`V = h @ kernel + bias` in float32 -> [N, T]."""
    h = hidden_NTD.astype(jnp.float32)
    return (h @ value_params["kernel"])[..., 0] + value_params["bias"][0]


def gae_returns(scores_N, values_NT, mask_NT, algo, old_logp_NT=None, ref_logp_NT=None):
    """Returns `R = A + V` of GAE (unwhitened) for the value loss (module doc)."""
    beta = float(algo.get("kl_coef", 0.0))
    if not beta:
        old_logp_NT = ref_logp_NT = jnp.zeros_like(values_NT)
    r_NT = kl_penalized_token_rewards(scores_N, old_logp_NT, ref_logp_NT, mask_NT, beta)
    _, returns_NT = gae(r_NT, values_NT, mask_NT, float(algo.get("gamma", 1.0)),
                        float(algo.get("lam", 1.0)))
    return returns_NT

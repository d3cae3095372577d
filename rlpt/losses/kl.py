"""Per-token KL estimators between the current policy and a reference policy.

With `d = ref_logp - logp` per token (tokens sampled from the current policy), following
verl `core_algos.kl_penalty` and DeepSeekMath (arXiv:2402.03300) eq. 4 / Schulman's note:

- `k1 = -d = logp - ref_logp`          unbiased estimate of KL(pi || ref), can be negative;
- `k2 = 0.5 * d**2`                      its gradient has the expectation of grad KL (KDRL uses it);
- `k3 = exp(d) - d - 1`                  unbiased and >= 0 (verl "low_var_kl", GRPO's estimator).

`clamp=True` reproduces verl's numerical guard for k3: `d` is clipped to [-20, 20] and the result
to at most 10 (gradient is zero wherever either clip binds). k1 and k2 are never clamped (verl
does not clamp them either).
"""
import jax.numpy as jnp

KL_KINDS = ("k1", "k2", "k3")
_ALIASES = {"kl": "k1", "k1": "k1", "mse": "k2", "k2": "k2", "low_var_kl": "k3", "k3": "k3"}


def kl_k1(logp, ref_logp):
    """k1 = logp - ref_logp."""
    return logp - ref_logp


def kl_k2(logp, ref_logp):
    """k2 = 0.5 * (ref_logp - logp)**2."""
    return 0.5 * jnp.square(ref_logp - logp)


def kl_k3(logp, ref_logp, clamp=False):
    """k3 = exp(d) - d - 1 with d = ref_logp - logp; verl clamps d to [-20, 20], k3 to <= 10."""
    d = ref_logp - logp
    if clamp:
        d = jnp.clip(d, -20.0, 20.0)
    k3 = jnp.exp(d) - d - 1.0
    if clamp:
        k3 = jnp.minimum(k3, 10.0)
    return k3


def kl(logp, ref_logp, kind="k3", clamp=False):
    """Per-token KL estimate of `kind` in k1/k2/k3 (verl aliases kl/mse/low_var_kl accepted)."""
    key = _ALIASES.get(kind)
    if key is None:
        raise ValueError(f"unknown KL estimator {kind!r}; known: {sorted(_ALIASES)}")
    if key == "k1":
        return kl_k1(logp, ref_logp)
    if key == "k2":
        return kl_k2(logp, ref_logp)
    return kl_k3(logp, ref_logp, clamp=clamp)

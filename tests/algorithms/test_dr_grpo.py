"""Dr. GRPO (rlpt/algorithms/dr_grpo.py): the gradient does not depend on the response length."""
import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import cfg, loss_and_grad, make_batch
from rlpt.registry import get


def test_dr_grpo_gradient_independent_of_length():
    G, T = 4, 8
    b = make_batch(5, N=G, T=T, lengths=[8, 1, 3, 5])
    b["logp"] = b["old_logp"].copy()
    r = np.array([1.0, 0.0, 1.0, 0.0])
    b["advantages"] = np.asarray(
        get("advantage", "dr_grpo")(jnp.asarray(r), jnp.asarray(b["mask"]), cfg(group_size=G)))
    for l_norm in (None, 16.0):
        with jax.enable_x64(True):
            _, _, g = loss_and_grad("dr_grpo", b, cfg(l_norm=l_norm))
        norm = T if l_norm is None else l_norm
        expect = -(r - r.mean())[:, None] / (G * norm) * b["mask"]
        np.testing.assert_allclose(g, expect, rtol=1e-9, atol=1e-14)

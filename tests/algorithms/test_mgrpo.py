"""MGRPO (rlpt/algorithms/mgrpo.py): the loss is the sum of the two layers' GRPO losses (its
layer-2 prompts and transition rates: tests/pieces/test_self_correction.py)."""
import jax
import numpy as np

from loss_refs import cfg, make_batch, to_jax
from rlpt.registry import get


def test_mgrpo_is_sum_of_two_grpo_losses():
    b1 = make_batch(12, N=4, T=5)
    b2 = make_batch(13, N=4, T=3)
    batch = dict(b1, **{f"layer2_{k}": v for k, v in b2.items()})
    with jax.enable_x64(True):
        loss, metrics = get("loss", "mgrpo")(to_jax(batch), None)
        l1, _ = get("loss", "grpo")(to_jax(b1), None)
        l2, _ = get("loss", "grpo")(to_jax(b2), None)
        loss_w, _ = get("loss", "mgrpo")(to_jax(batch), cfg(layer2_coef=0.5))
    np.testing.assert_allclose(float(loss), float(l1) + float(l2), rtol=1e-12)
    np.testing.assert_allclose(float(loss_w), float(l1) + 0.5 * float(l2), rtol=1e-12)
    assert float(l1) != float(l2)
    n1, n2 = b1["mask"].sum(), b2["mask"].sum()
    np.testing.assert_allclose(
        float(metrics["kl"]),
        (float(metrics["layer1_kl"]) * n1 + float(metrics["layer2_kl"]) * n2) / (n1 + n2))

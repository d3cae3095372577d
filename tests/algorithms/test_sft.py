"""SFT (rlpt/algorithms/sft.py): token-mean NLL; entropy_coef 0 by default (ReLIFT's SFT step,
test_relift.py, is the same loss with 1e-3)."""
import jax
import numpy as np

from loss_refs import cfg, make_batch, to_jax
from rlpt.registry import get


def test_sft_loss_is_token_mean_nll():
    b = make_batch(15, N=4, T=6)
    b.pop("ref_logp")
    m = b["mask"]
    with jax.enable_x64(True):
        loss_plain, _ = get("loss", "sft")(to_jax(b), None)
        loss_ent, _ = get("loss", "sft")(to_jax(b), cfg(entropy_coef=1e-3))
        loss_relift, _ = get("loss", "relift_sft")(to_jax(b), None)
    nll = -(b["logp"] * m).sum() / m.sum()
    np.testing.assert_allclose(float(loss_plain), nll, rtol=1e-10)  # sft: entropy_coef 0
    np.testing.assert_allclose(float(loss_ent), float(loss_relift), rtol=1e-12)

"""ReLIFT (rlpt/algorithms/relift.py, relift_sft.py): the RL loss (no KL) and the SFT step's
loss (token-mean NLL - 1e-3 entropy)."""
import jax
import numpy as np

from loss_refs import make_batch, np_agg, np_clip_tok, to_jax
from rlpt.registry import get


def test_relift_rl_and_sft_losses():
    b = make_batch(15, N=4, T=6)
    b.pop("ref_logp")
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2)
    m = b["mask"]
    with jax.enable_x64(True):
        loss, metrics = get("loss", "relift")(to_jax(b), None)
        loss_sft, m_sft = get("loss", "relift_sft")(to_jax(b), None)
    assert "kl" not in metrics
    np.testing.assert_allclose(float(loss), np_agg(tok, m, "seq_mean_token_sum_norm"), rtol=1e-10)
    nll = -(b["logp"] * m).sum() / m.sum()
    ent = (b["entropy"] * m).sum() / m.sum()
    np.testing.assert_allclose(float(loss_sft), nll - 1e-3 * ent, rtol=1e-10)
    np.testing.assert_allclose(float(m_sft["nll"]), nll, rtol=1e-10)

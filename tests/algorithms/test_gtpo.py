"""GTPO and GRPO-S (rlpt/algorithms/gtpo.py, grpo_s.py): their losses (clip-higher, token mean,
no KL), GRPO-S at the sequence ratio = GSPO-token (their entropy-shaped advantages:
tests/test_advantages.py)."""
import jax
import numpy as np

from loss_refs import cfg, make_batch, np_agg, np_clip_tok, to_jax
from rlpt.registry import get


def test_grpo_s_and_gtpo_losses():
    b = make_batch(17, N=4, T=5, spread=0.4)
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.28)
    expect = np_agg(tok, b["mask"], "token_mean")
    b_noref = {k: v for k, v in b.items() if k != "ref_logp"}
    with jax.enable_x64(True):
        for name in ("gtpo", "grpo_s"):
            loss, _ = get("loss", name)(to_jax(b_noref), None)
            np.testing.assert_allclose(float(loss), expect, rtol=1e-10)
        c = cfg(ratio_level="sequence", loss_agg="seq_mean_token_mean")
        loss_seq, _ = get("loss", "grpo_s")(to_jax(b_noref), c)
        loss_gt, _ = get("loss", "gspo_token")(to_jax(b_noref), cfg(eps_low=0.2, eps_high=0.28))
    np.testing.assert_allclose(float(loss_seq), float(loss_gt), rtol=1e-12)

"""PPO (rlpt/algorithms/ppo.py): the clipped policy loss with the clipped value head vs numpy."""
import jax
import numpy as np

from loss_refs import make_batch, np_agg, np_clip_tok, to_jax
from rlpt.registry import get


def test_ppo_loss_with_value_head_matches_numpy():
    rng = np.random.default_rng(2)
    b = make_batch(2, N=4, T=6, spread=0.5)
    b.update(values=rng.normal(size=(4, 6)), old_values=rng.normal(size=(4, 6)),
             returns=rng.normal(size=(4, 6)))
    m = b["mask"]
    pg = np_agg(np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2, 3.0), m,
                "token_mean")
    vc = b["old_values"] + np.clip(b["values"] - b["old_values"], -0.2, 0.2)
    vf = 0.5 * np_agg(np.maximum((b["values"] - b["returns"]) ** 2, (vc - b["returns"]) ** 2), m,
                      "token_mean")
    with jax.enable_x64(True):
        loss, metrics = get("loss", "ppo")(to_jax(b), None)
    np.testing.assert_allclose(float(metrics["pg_loss"]), pg, rtol=1e-10)
    np.testing.assert_allclose(float(metrics["vf_loss"]), vf, rtol=1e-10)
    np.testing.assert_allclose(float(loss), pg + 0.5 * vf - 0.0, rtol=1e-10)

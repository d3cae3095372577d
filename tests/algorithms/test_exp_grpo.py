"""ExPO-GRPO (rlpt/algorithms/exp_grpo.py): GRPO minus the explanation log-likelihood term, its
gradient and annealing."""
import jax
import jax.numpy as jnp
import numpy as np

from loss_refs import cfg, make_batch, np_agg, np_clip_tok, np_k3, sft_part, to_jax
from rlpt.registry import get


def test_exp_grpo_value_gradient_and_annealing():
    b = make_batch(11, N=4, T=5)
    b.update(sft_part(11))
    sm = b["sft_mask"]
    grpo_tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) + 0.04 * np_k3(
        b["logp"], b["ref_logp"])
    rl = np_agg(grpo_tok, b["mask"], "seq_mean_token_mean")
    loglik = (b["sft_logp"] * sm).sum(1).mean()
    fn = get("loss", "exp_grpo")
    with jax.enable_x64(True):
        jb = to_jax(b)
        loss, metrics = fn(jb, cfg(sft_coef=0.2))
        g = jax.grad(lambda s: fn({**jb, "sft_logp": s}, cfg(sft_coef=0.2))[0])(jb["sft_logp"])
        loss_ann, _ = fn({**jb, "step": jnp.array(30)}, cfg(sft_coef=0.2, sft_anneal_steps=40))
    np.testing.assert_allclose(float(loss), rl - 0.2 * loglik, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g), -0.2 / 3 * sm, rtol=1e-10)
    np.testing.assert_allclose(float(loss_ann), rl - 0.2 * 0.25 * loglik, rtol=1e-10)
    np.testing.assert_allclose(float(metrics["expl_loglik"]), loglik, rtol=1e-10)

"""KDRL (rlpt/algorithms/kdrl.py): the KD coefficient schedule, teacher = student reduces to GRPO,
and the value with the reward-guided KD masks."""
import jax
import numpy as np
import pytest

from loss_refs import cfg, loss_and_grad, make_batch, np_agg, np_clip_tok, to_jax
from rlpt.algorithms.kdrl import kd_beta
from rlpt.registry import get


def test_kd_beta_schedule():
    vals = [float(kd_beta(t)) for t in (0, 40, 80, 1000)]
    np.testing.assert_allclose(vals, [5e-3, 3e-3, 1e-3, 1e-3], rtol=1e-5)


def test_kdrl_teacher_equals_student_is_grpo():
    b = make_batch(9, N=4, T=5, spread=0.4)
    b["teacher_logp"] = b["logp"].copy()  # grad flows only through logp; teacher is data
    c = cfg(group_size=4, kd_mask="none", beta=0.04)
    with jax.enable_x64(True):
        loss, metrics, g = loss_and_grad("kdrl", b, c)
        loss_g, _, g_g = loss_and_grad("grpo", b, cfg(loss_agg="token_mean", beta=0.04))
    np.testing.assert_allclose(loss, loss_g, rtol=1e-12)
    np.testing.assert_allclose(g, g_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(metrics["kd_beta"]), 5e-3, rtol=1e-6)


@pytest.mark.parametrize("mode", ["incorrect_response", "no_correct_in_group"])
def test_kdrl_value_with_reward_guided_mask(mode):
    G = 2
    b = make_batch(10, N=4, T=5, spread=0.3)
    b["rewards"] = np.array([1.0, 0.0, 0.0, 0.0])
    b["step"] = np.array(20)
    kd = {"incorrect_response": [0, 1, 1, 1], "no_correct_in_group": [0, 0, 1, 1]}[mode]
    kd = np.array(kd, float)
    beta_t = 5e-3 - 5e-5 * 20
    m = b["mask"]
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2)
    tok = tok + beta_t * 0.5 * (b["teacher_logp"] - b["logp"]) ** 2 * kd[:, None]
    with jax.enable_x64(True):
        loss, metrics = get("loss", "kdrl")(to_jax(b), cfg(group_size=G, kd_mask=mode))
    np.testing.assert_allclose(float(loss), np_agg(tok, m, "token_mean"), rtol=1e-9)
    np.testing.assert_allclose(float(metrics["kd_beta"]), beta_t, rtol=1e-6)

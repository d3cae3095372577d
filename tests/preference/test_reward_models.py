"""Reward-model losses against numpy references and objectives.md section 4 sanity values."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ml_collections

from rlpt import registry
from rlpt.algorithms import rm_rlaif_soft, rm_rluf, rm_vrpo
from rlpt.losses import reward_model as RM

# the reward-model loss of each name and the record whose DEFAULTS it reads
RECORD_OF_LOSS = {"bt_rm": "rm_bt", "vrpo_rm": "rm_vrpo", "rlaif_soft_rm": "rm_rlaif_soft",
                  "rluf_rm": "rm_rluf"}


def np_l(t):  # logistic loss -log sigmoid(t)
    return np.logaddexp(0.0, -np.asarray(t, np.float64))


def np_hinge(t):
    t = np.asarray(t, np.float64)
    return np.maximum(0, 1 - t) - np.maximum(0, -0.5 - t)


def np_sig(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def default_config(name):
    record = registry.get("algorithm", RECORD_OF_LOSS[name])
    return ml_collections.ConfigDict(dict(name=name, **record.defaults))


def run(name, batch, **overrides):
    cfg = default_config(name)
    cfg.update(overrides)
    batch = {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()}
    return registry.get("loss", name)(batch, cfg)


def test_registered_names():
    for name in ("bt_rm", "vrpo_rm", "rlaif_soft_rm", "rluf_rm"):
        assert callable(registry.get("loss", name))
        assert registry.get("algorithm", RECORD_OF_LOSS[name]).loss is registry.get("loss", name)
    with pytest.raises(KeyError, match="known"):
        registry.get("loss", "nope_rm")


# --- Bradley-Terry -----------------------------------------------------------------------------


@pytest.mark.parametrize("margin,expected", [(0.0, math.log(2.0)), (1.0, 0.313262)])
def test_bt_sanity(margin, expected):
    loss, metrics = run("bt_rm", {"rewards": [[margin, 0.0]], "scores": [[1.0, 0.0]]})
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert float(metrics["accuracy"]) == (1.0 if margin > 0 else 0.0)  # reward tie counts 0


def np_bt(rewards, scores, mask=None):
    """Loop over every pair of every prompt; returns per-prompt lists of (loss, correct)."""
    out = []
    for b in range(rewards.shape[0]):
        pairs = []
        for i, j in itertools.combinations(range(rewards.shape[1]), 2):
            masked = mask is not None and not (mask[b, i] and mask[b, j])
            if scores[b, i] == scores[b, j] or masked:
                continue
            w, l = (i, j) if scores[b, i] > scores[b, j] else (j, i)
            d = rewards[b, w] - rewards[b, l]
            pairs.append((np_l(d), float(d > 0)))
        out.append(pairs)
    return out


def bt_case():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(3, 4))
    rewards[0, 2] = rewards[0, 3]  # a reward tie on a valid pair: counts as wrong
    scores = np.array([[3, 2, 1, 0], [1, 1, 0, 2], [5, 5, 5, 5]], np.float64)  # ties skipped
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]], np.float64)
    return rewards, scores, mask


def test_bt_all_pairs_against_numpy():
    rewards, scores, mask = bt_case()
    per_prompt = np_bt(rewards, scores)
    flat = [p for pp in per_prompt for p in pp]
    assert len(flat) == 6 + 5 + 0
    loss, metrics = run("bt_rm", {"rewards": rewards, "scores": scores})
    assert float(loss) == pytest.approx(np.mean([p[0] for p in flat]), rel=1e-5)
    assert float(metrics["accuracy"]) == pytest.approx(np.mean([p[1] for p in flat]), rel=1e-6)
    assert float(metrics["num_pairs"]) == 11
    acc = RM.pairwise_accuracy(jnp.asarray(rewards), jnp.asarray(scores))
    assert float(acc) == pytest.approx(float(metrics["accuracy"]))

    # prompt reduction: mean over prompts having any valid pair of their own mean
    loss_p, _ = run("bt_rm", {"rewards": rewards, "scores": scores}, reduction="prompt")
    expected = np.mean([np.mean([p[0] for p in pp]) for pp in per_prompt if pp])
    assert float(loss_p) == pytest.approx(expected, rel=1e-5)

    # response mask removes every pair touching a masked response
    masked = [p for pp in np_bt(rewards, scores, mask) for p in pp]
    loss_m, metrics_m = run("bt_rm", {"rewards": rewards, "scores": scores,
                                      "response_mask": mask})
    assert float(loss_m) == pytest.approx(np.mean([p[0] for p in masked]), rel=1e-5)
    assert float(metrics_m["num_pairs"]) == len(masked)


def test_bt_gradient_closed_form():
    """d/dr_w of -log sig(r_w - r_l) = -sig(-(r_w - r_l)); averaged over P pairs."""
    rewards = jnp.array([[0.3, -0.2, 1.0]])
    scores = jnp.array([[2.0, 1.0, 0.0]])  # 0 > 1 > 2
    cfg = default_config("bt_rm")
    grad = jax.grad(lambda r: RM.bt_rm_loss({"rewards": r, "scores": scores}, cfg)[0])(rewards)
    r = np.asarray(rewards)[0]
    s = lambda a, b: np_sig(-(r[a] - r[b])) / 3  # noqa: E731
    expected = [-s(0, 1) - s(0, 2), s(0, 1) - s(1, 2), s(0, 2) + s(1, 2)]
    np.testing.assert_allclose(np.asarray(grad)[0], expected, rtol=1e-5)


def test_bt_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        run("bt_rm", {"rewards": [[1.0, 0.0]], "scores": [[1.0, 0.0]]}, reduction="bogus")


# --- VRPO --------------------------------------------------------------------------------------


def np_vrpo(d, g, ds, gs, l=np_l):
    return l(d) - (g * l(d) + (1 - g) * l(-d)) + (gs * l(ds) + (1 - gs) * l(-ds))


def test_vrpo_sanity():
    batch = {"r_w": [1.5], "r_l": [0.5], "g": [0.8], "r_a1": [0.25], "r_a2": [-0.25],
             "g_star": [0.6]}
    loss, _ = run("vrpo_rm", batch)
    assert float(loss) == pytest.approx(0.474077, abs=1e-6)


@pytest.mark.parametrize("loss_type,l", [("logistic", np_l), ("hinge", np_hinge)])
def test_vrpo_matches_numpy_and_reduces_to_l(loss_type, l):
    rng = np.random.default_rng(1)
    r_w, r_l, r_a1, r_a2 = (rng.normal(size=6) for _ in range(4))
    g, gs = rng.random(6), rng.random(6)
    batch = {"r_w": r_w, "r_l": r_l, "g": g, "r_a1": r_a1, "r_a2": r_a2, "g_star": gs}
    loss, _ = run("vrpo_rm", batch, loss_type=loss_type)
    assert float(loss) == pytest.approx(np.mean(np_vrpo(r_w - r_l, g, r_a1 - r_a2, gs, l)),
                                        rel=1e-5)
    # (a1, a2) = (y_w, y_l) and g* = g: the loss is the plain l(D)
    same = dict(batch, r_a1=r_w, r_a2=r_l, g_star=g)
    loss_same, _ = run("vrpo_rm", same, loss_type=loss_type)
    assert float(loss_same) == pytest.approx(np.mean(l(r_w - r_l)), rel=1e-5)


def test_bounded_hinge_values():
    t = jnp.array([3.0, 1.0, 0.0, -0.5, -1.0, -10.0])
    np.testing.assert_allclose(rm_vrpo.bounded_hinge_loss(t), [0.0, 0.0, 1.0, 1.5, 1.5, 1.5])
    with pytest.raises(ValueError, match="loss_type"):
        rm_vrpo.vrpo_losses(t, t, t, t, loss_type="bogus")


# --- RLAIF soft labels and RLUF BCE -------------------------------------------------------------


def test_rlaif_soft_labels():
    rng = np.random.default_rng(2)
    r_a, r_b, p = rng.normal(size=5), rng.normal(size=5), rng.random(5)
    d = r_a - r_b
    loss, metrics = run("rlaif_soft_rm", {"r_a": r_a, "r_b": r_b, "p": p})
    assert float(loss) == pytest.approx(np.mean(p * np_l(d) + (1 - p) * np_l(-d)), rel=1e-5)
    # p = 1 is the Bradley-Terry loss; the gradient in D is sig(D) - p
    hard, _ = run("rlaif_soft_rm", {"r_a": r_a, "r_b": r_b, "p": np.ones(5)})
    assert float(hard) == pytest.approx(np.mean(np_l(d)), rel=1e-5)
    cfg = default_config("rlaif_soft_rm")
    grad = jax.grad(lambda ra: rm_rlaif_soft.rlaif_soft_rm_loss(
        {"r_a": ra, "r_b": jnp.asarray(r_b, jnp.float32), "p": jnp.asarray(p, jnp.float32)},
        cfg)[0])(jnp.asarray(r_a, jnp.float32))
    np.testing.assert_allclose(grad, (np_sig(d) - p) / 5, rtol=1e-4, atol=1e-7)
    # the KL to the judge vanishes when the model's probability equals the judge's
    _, m = run("rlaif_soft_rm", {"r_a": d, "r_b": np.zeros(5), "p": np_sig(d)})
    assert abs(float(m["kl_to_judge"])) < 1e-5
    assert float(metrics["kl_to_judge"]) > 0


def test_rluf_bce():
    f = np.array([2.0, -1.0, 0.5, -3.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss, metrics = run("rluf_rm", {"logits": f, "labels": y})
    assert float(loss) == pytest.approx(np.mean(y * np_l(f) + (1 - y) * np_l(-f)), rel=1e-5)
    assert float(metrics["accuracy"]) == pytest.approx(0.5)
    loss_pw, _ = run("rluf_rm", {"logits": f, "labels": y}, pos_weight=3.0)
    assert float(loss_pw) == pytest.approx(np.mean(3 * y * np_l(f) + (1 - y) * np_l(-f)),
                                           rel=1e-5)
    cfg = default_config("rluf_rm")
    grad = jax.grad(lambda x: rm_rluf.rluf_rm_loss(
        {"logits": x, "labels": jnp.asarray(y)}, cfg)[0])(jnp.asarray(f, jnp.float32))
    np.testing.assert_allclose(grad, (np_sig(f) - y) / 4, rtol=1e-5)

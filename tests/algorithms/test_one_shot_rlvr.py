"""1-shot RLVR (rlpt/algorithms/one_shot_rlvr.py): the loss (k3 KL and entropy bonus, both
1e-3, token mean) and the ranking of examples by the variance of their accuracy history."""
import jax
import numpy as np
import pytest

from loss_refs import make_batch, np_agg, np_clip_tok, np_k3, to_jax
from rlpt.algorithms.one_shot_rlvr import rank_examples_by_accuracy_variance
from rlpt.registry import get


def test_one_shot_rlvr_value_and_ranking():
    b = make_batch(16, N=8, T=5)
    m = b["mask"]
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], 0.2, 0.2) + 1e-3 * np_k3(
        b["logp"], b["ref_logp"])
    expect = np_agg(tok, m, "token_mean") - 1e-3 * (b["entropy"] * m).sum() / m.sum()
    with jax.enable_x64(True):
        loss, _ = get("loss", "one_shot_rlvr")(to_jax(b), None)
    np.testing.assert_allclose(float(loss), expect, rtol=1e-10)
    with pytest.raises(KeyError, match="entropy"):
        get("loss", "one_shot_rlvr")(to_jax({k: v for k, v in b.items() if k != "entropy"}), None)
    hist = np.array([[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0.5, 0.5, np.nan, 0.5]])
    # variances (ddof=0): 0, 0.25, 0.25, 0 -> [1, 2, 0, 3]
    np.testing.assert_array_equal(rank_examples_by_accuracy_variance(hist), [1, 2, 0, 3])


def test_the_ranking_script_trains_with_the_host_reward_as_with_the_device_one():
    """scripts/one_shot_rank.rank: with `reward.kind="split"` (a pretrained model's verifier on
    the host) the pool trains with the split step; on a synthetic task, whose host reward is the
    device reward in Python, both give the same accuracy history and order."""
    import os
    import runpy
    from conftest import REPO_ROOT
    from rlpt.config import load_config
    rank = runpy.run_path(os.path.join(REPO_ROOT, "scripts", "one_shot_rank.py"))["rank"]
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "one_shot_rlvr.py")
                      + ":arm=one_shot,quick=1,size=nano")
    got = {}
    for kind in ("device", "split"):
        cfg.reward.kind = kind
        hist, order, _, pool = rank(cfg, 4, 2)
        got[kind] = (hist, order)
    assert got["device"][0].shape == (4, 2)
    np.testing.assert_array_equal(got["split"][0], got["device"][0])
    np.testing.assert_array_equal(got["split"][1], got["device"][1])


def test_accuracy_history_over_slices_of_the_pool():
    """`prompts_per_step` = c: an epoch is E / c steps on consecutive slices of c examples, the
    history one column per epoch in pool order; c must divide the pool size."""
    from rlpt.algorithms.one_shot_rlvr import accuracy_history
    pool = {"prompt": np.arange(6)[:, None] * np.ones((6, 3)), "target": np.arange(6)}
    seen = []

    def step(state, batch, hp):   # accuracy = example id / 10 + the step count / 100
        seen.append(batch["target"].tolist())
        return state + 1, {"accuracy_per_prompt": batch["target"] / 10 + state / 100}
    epochs = []
    state, hist = accuracy_history(step, 0, pool, None, 2, prompts_per_step=2,
                                   on_epoch=lambda e, accs: epochs.append((e, accs.tolist())))
    assert seen == [[0, 1], [2, 3], [4, 5]] * 2 and state == 6
    assert [e for e, _ in epochs] == [0, 1]   # the progress callback: each epoch's column
    np.testing.assert_allclose(epochs[1][1], hist[:, 1])
    np.testing.assert_allclose(hist[:, 0], [0.0, 0.1, 0.21, 0.31, 0.42, 0.52])
    np.testing.assert_allclose(hist[:, 1], hist[:, 0] + 0.03)
    _, whole = accuracy_history(step, 0, pool, None, 2)
    assert whole.shape == (6, 2) and seen[-1] == list(range(6))
    with pytest.raises(ValueError, match="prompts_per_step=4 must divide the pool size 6"):
        accuracy_history(step, 0, pool, None, 1, prompts_per_step=4)

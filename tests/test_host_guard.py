"""safe_host_reward: a raising row or a non-finite reward is scored `on_error` and counted."""
import numpy as np
import pytest

from rlpt.rewards.host_guard import RewardShapeError, safe_host_reward


def row_sum_reward(tokens, mask):
    """Sum of each row's masked tokens; raises on a row whose first token is 13."""
    out = np.zeros(tokens.shape[0], np.float32)
    for i in range(tokens.shape[0]):
        if tokens[i, 0] == 13:
            raise ValueError("row text the verifier cannot read")
        out[i] = float((tokens[i] * mask[i]).sum())
    return out


def test_a_raising_row_scores_on_error_and_the_others_keep_their_reward():
    tokens = np.array([[1, 2], [13, 0], [3, 4], [13, 5]])
    mask = np.ones_like(tokens)
    guarded = safe_host_reward(row_sum_reward, on_error=-1.0)
    r, n = guarded(tokens, mask)
    np.testing.assert_array_equal(r, [3.0, -1.0, 7.0, -1.0])
    assert n == 2 and r.dtype == np.float32
    assert "cannot read" in guarded.last_error
    r, n = guarded(tokens[[0, 2]], mask[[0, 2]])  # a clean batch: one call, no errors
    np.testing.assert_array_equal(r, [3.0, 7.0])
    assert n == 0


def test_non_finite_rewards_score_on_error_and_are_counted():
    fn = lambda x: np.array([1.0, np.nan, np.inf, -np.inf, 2.0])[: len(x)]
    r, n = safe_host_reward(fn, on_error=0.5)(np.zeros((5, 3)))
    np.testing.assert_array_equal(r, [1.0, 0.5, 0.5, 0.5, 2.0])
    assert n == 3


def test_every_row_raising_and_non_array_arguments():
    def fn(tokens, scale):
        raise RuntimeError("verifier down")
    r, n = safe_host_reward(fn)(np.zeros((3, 2)), 2.0)
    np.testing.assert_array_equal(r, [0.0, 0.0, 0.0])
    assert n == 3


def test_a_wrong_shape_is_a_bug_and_raises():
    with pytest.raises(RewardShapeError, match=r"shape \(2,\) for 3 rows"):
        safe_host_reward(lambda x: np.zeros(2))(np.zeros((3, 1)))


def test_keyboard_interrupt_is_not_swallowed():
    def fn(x):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        safe_host_reward(fn)(np.zeros((2, 1)))

"""pass@k / maj@k / avg@k against objectives.md section 6 and a brute-force combinatorial count."""
from itertools import combinations
from math import comb

import numpy as np
import pytest

from rlpt.evaluation.metrics import avg_at_k, maj_at_k, majority, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k,want", [(10, 3, 1, 0.3), (10, 3, 2, 0.533333), (10, 3, 5, 0.916667),
                                        (10, 3, 8, 1.0), (256, 1, 128, 0.5), (1024, 1, 256, 0.25)])
def test_pass_at_k_sanity(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-6)


def test_pass_at_k_matches_combinations():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)


def test_mean_and_avg():
    correct = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert mean_pass_at_k(correct, 1) == pytest.approx((0.25 + 1 + 0) / 3)
    assert mean_pass_at_k(correct, 4) == pytest.approx(2 / 3)
    assert avg_at_k(correct) == pytest.approx(5 / 12)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_and_maj_at_k():
    assert majority(["3", "4", "4", None]) == "4"
    assert majority(["3", "4"]) == "3"  # tie: first seen
    assert majority([None, None]) is None
    answers = ["7", "7", "5", "7", "5"]
    brute = np.mean([majority([answers[i] for i in s]) == "7" for s in combinations(range(5), 3)])
    assert maj_at_k(answers, "7", 3) == pytest.approx(brute)
    assert maj_at_k(answers, "7", 5) == 1.0

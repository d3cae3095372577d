"""Evaluation estimators: unbiased pass@k, maj@k and avg@k (objectives.md section 6).

pass@k is Chen et al. (arXiv 2107.03374): with n samples of which c are correct,
`pass@k = 1 - C(n-c, k) / C(n, k)`, computed in the stable product form
`1 - prod_{j=n-c+1}^{n} (1 - k/j)` (and exactly 1 when n - c < k).
"""
from collections import Counter
from itertools import combinations
from typing import Hashable, Optional, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples, c correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(correct_BN: np.ndarray, k: int) -> float:
    """Mean pass@k over problems from a [B, n] 0/1 correctness array."""
    correct_BN = np.asarray(correct_BN) > 0.5
    n = correct_BN.shape[1]
    return float(np.mean([pass_at_k(n, int(c), k) for c in correct_BN.sum(axis=1)]))


def avg_at_k(correct_BN: np.ndarray) -> float:
    """avg@k: mean accuracy over all k samples of all problems."""
    return float(np.mean(np.asarray(correct_BN) > 0.5))


def majority(answers: Sequence[Optional[Hashable]]) -> Optional[Hashable]:
    """Plurality answer; ties go to the answer seen first; None (no answer) never wins."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def maj_at_k(answers: Sequence[Optional[Hashable]], gold: Hashable, k: int,
             max_subsets: int = 2000, seed: int = 0) -> float:
    """maj@k for one problem: fraction of k-subsets of the n answers whose plurality is gold.

    With n == k it is one vote. With more than `max_subsets` subsets, a fixed-seed random sample
    of subsets estimates the average.
    """
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"maj_at_k needs 1 <= k <= n, got n={n} k={k}")
    from math import comb
    if comb(n, k) <= max_subsets:
        subsets = combinations(range(n), k)
    else:
        rng = np.random.default_rng(seed)
        subsets = (sorted(rng.choice(n, size=k, replace=False)) for _ in range(max_subsets))
    votes = [majority([answers[i] for i in s]) == gold for s in subsets]
    return float(np.mean(votes))


def by_difficulty(greedy_correct_B: np.ndarray, correct_BN: np.ndarray, difficulty_B: np.ndarray,
                  k: int) -> dict:
    """Per difficulty label d (a task's `batch["difficulty"]`): `greedy_acc_d{d}`, `pass@1_d{d}`
    and `pass@{k}_d{d}` over the problems with that label."""
    g, c, d = (np.asarray(greedy_correct_B) > 0.5, np.asarray(correct_BN),
               np.asarray(difficulty_B))
    out = {}
    for v in sorted(set(d.tolist())):
        rows = d == v
        out[f"greedy_acc_d{v}"] = float(np.mean(g[rows]))
        for kk in sorted({1, k}):
            out[f"pass@{kk}_d{v}"] = mean_pass_at_k(c[rows], kk)
    return out


def calibration(confidence_B: np.ndarray, correct_B: np.ndarray, bins: int = 10) -> dict:
    """How well answers' confidences in [0, 1] track their correctness: `ece`, the expected
    calibration error over `bins` equal-width bins (sum over bins of |accuracy - mean
    confidence| x the bin's share of answers; Guo et al., arXiv 1706.04599), `confidence` (the
    mean), and `confidence_auc`, the probability that a right answer is more confident than a
    wrong one (ties count half; 0.5 when all are right or all wrong): below 0.5, confidence-
    ranked pairs put wrong answers first, as RLSF's pairs would (arXiv 2507.21931)."""
    c = np.clip(np.asarray(confidence_B, np.float64), 0.0, 1.0)
    y = np.asarray(correct_B) > 0.5
    idx = np.minimum((c * bins).astype(int), bins - 1)
    ece = sum(abs(y[idx == b].mean() - c[idx == b].mean()) * np.mean(idx == b)
              for b in range(bins) if np.any(idx == b))
    right, wrong = c[y], c[~y]
    if len(right) and len(wrong):
        auc = float(np.mean((right[:, None] > wrong[None, :])
                            + 0.5 * (right[:, None] == wrong[None, :])))
    else:
        auc = 0.5
    return {"ece": float(ece), "confidence": float(c.mean()), "confidence_auc": auc}


def self_correction_rates(first_correct_B: np.ndarray, second_correct_B: np.ndarray) -> dict:
    """Self-correction of a first attempt by a second one on the same B problems (MGRPO's layer 2
    at evaluation; the attempts come from rlpt.pieces.self_correction.self_correction_rewards),
    each a [B] 0/1 correctness (> 0.5 is correct): `sc_wrong_to_right` (share of the initially wrong
    problems the second attempt gets right; 0 when none was wrong), `sc_right_to_wrong` (share of
    the initially right ones it gets wrong; 0 when none was right) and `sc_acc_after` (accuracy of
    the second attempt)."""
    a, b = np.asarray(first_correct_B) > 0.5, np.asarray(second_correct_B) > 0.5
    rate = lambda hits, rows: float(np.sum(hits & rows) / max(int(np.sum(rows)), 1))
    return {"sc_wrong_to_right": rate(b, ~a), "sc_right_to_wrong": rate(~b, a),
            "sc_acc_after": float(np.mean(b))}

"""mmGRPO groups, Agent Lightning transition advantages, ASearcher staleness admission."""
import random
import statistics

import numpy as np
import pytest

from rlpt.envs.grouping import (mmgrpo_groups, mmgrpo_module_groups, staleness_capacity,
                                staleness_limit, transition_advantages)

CALLS = [["a0", "a1", "a2"], ["b0"], ["c0", "c1"]]   # invocation counts [3, 1, 2]
REWARDS = [1.0, 0.0, 0.5]


def _calls(groups):
    return [[inv.call for inv in g] for g in groups]


def test_mmgrpo_spec_counts():
    assert len(mmgrpo_groups(CALLS, REWARDS, "truncate")) == 1
    assert len(mmgrpo_groups(CALLS, REWARDS, "fill")) == 3
    assert [len(g) for g in mmgrpo_groups(CALLS, REWARDS, "ragged")] == [3, 2, 1]


def test_mmgrpo_group_contents():
    assert _calls(mmgrpo_groups(CALLS, REWARDS)) == [["a0", "b0", "c0"]]
    assert _calls(mmgrpo_groups(CALLS, REWARDS, "fill")) == [
        ["a0", "b0", "c0"], ["a1", "b0", "c1"], ["a2", "b0", "c1"]]
    assert _calls(mmgrpo_groups(CALLS, REWARDS, "ragged")) == [["a0", "b0", "c0"], ["a1", "c1"],
                                                              ["a2"]]
    for group in mmgrpo_groups(CALLS, REWARDS, "fill"):
        assert [(inv.rollout, inv.reward) for inv in group] == [(0, 1.0), (1, 0.0), (2, 0.5)]
        for inv in group:
            assert CALLS[inv.rollout][inv.position] == inv.call


def test_mmgrpo_random_fill_draws_from_the_rollouts_own_calls():
    groups = mmgrpo_groups([["x0", "x1", "x2", "x3"], ["y0", "y1"]], [1, 0], "fill", "random",
                           rng=random.Random(3))
    assert len(groups) == 4 and all(len(g) == 2 for g in groups)
    assert [g[1].call for g in groups[:2]] == ["y0", "y1"]
    assert {g[1].call for g in groups[2:]} <= {"y0", "y1"}
    again = mmgrpo_groups([["x0", "x1", "x2", "x3"], ["y0", "y1"]], [1, 0], "fill", "random",
                          rng=random.Random(3))
    assert _calls(again) == _calls(groups)


def test_mmgrpo_edge_cases():
    assert mmgrpo_groups([["a"], []], [1, 0], "ragged") == []   # dspy skips the module
    assert mmgrpo_groups([], []) == []
    with pytest.raises(ValueError, match="rewards"):
        mmgrpo_groups(CALLS, [1.0])
    with pytest.raises(ValueError, match="known"):
        mmgrpo_groups(CALLS, REWARDS, "pad")


def test_mmgrpo_module_groups():
    traces = [[("query", "q1"), ("answer", "A1"), ("query", "q2")],
              [("query", "r1"), ("answer", "B1")]]
    got = mmgrpo_module_groups(traces, [1.0, 0.0], mode="fill")
    assert sorted(got) == ["answer", "query"]
    assert _calls(got["answer"]) == [["A1", "B1"]]
    assert _calls(got["query"]) == [["q1", "r1"], ["q2", "r1"]]


# ----------------------------------------------------------------------------- Agent Lightning


def test_transition_advantages_spec_sanity():
    got = transition_advantages([1.0, 0.0], [3, 1], eps=0.0)
    np.testing.assert_allclose(got, [0.5, 0.5, 0.5, -1.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(transition_advantages([1.0, 0.0], [3, 1]), [0.5, 0.5, 0.5, -1.5],
                               rtol=1e-5)


def test_transition_advantages_against_statistics():
    rng = random.Random(0)
    rewards = [rng.random() for _ in range(6)]
    counts = [rng.randint(1, 4) for _ in range(6)]
    tasks = ["p", "q", "p", "q", "p", "q"]
    flat = [(t, r) for t, r, n in zip(tasks, rewards, counts) for _ in range(n)]
    for ddof, std in [(1, statistics.stdev), (0, statistics.pstdev)]:
        got = transition_advantages(rewards, counts, tasks, ddof=ddof, eps=0.0)
        for i, (t, r) in enumerate(flat):
            same = [v for u, v in flat if u == t]
            assert got[i] == pytest.approx((r - statistics.mean(same)) / std(same))


def test_transition_advantages_edge_cases():
    assert transition_advantages([2.0], [1], eps=0.0).tolist() == [2.0]   # verl: mean 0, std 1
    assert transition_advantages([1.0, 1.0], [2, 3]).tolist() == [0.0] * 5
    assert transition_advantages([1.0, 0.0, 5.0], [1, 1, 0], eps=0.0).tolist() == pytest.approx(
        [2 ** -0.5, -(2 ** -0.5)])                                           # no transitions
    with pytest.raises(ValueError, match="transition counts"):
        transition_advantages([1.0], [1, 2])


# ----------------------------------------------------------------------------- ASearcher


def test_staleness_spec_sanity():
    assert staleness_limit(eta=4, batch_size=128, version=10) == 1920
    assert staleness_capacity(4, 128, 10, accepted=1600, running=0) == 320
    assert staleness_capacity(4, 128, 10, accepted=1500, running=100) == 320


def test_staleness_capacity_matches_an_admission_loop():
    for eta, batch, version, accepted, running in [(4, 128, 10, 1600, 0), (0, 8, 0, 3, 2),
                                                   (2, 16, 5, 90, 10), (1, 4, 0, 9, 0)]:
        admitted = 0
        while accepted + running + admitted < (eta + version + 1) * batch:
            admitted += 1
        assert staleness_capacity(eta, batch, version, accepted, running) == admitted


def test_staleness_concurrency_cap_and_errors():
    assert staleness_capacity(4, 128, 10, 1600, 0, max_concurrent=64) == 64
    assert staleness_capacity(4, 128, 10, 1600, 60, max_concurrent=64) == 4
    assert staleness_capacity(0, 8, 0, 20, 0) == 0                  # over the limit: none
    with pytest.raises(ValueError):
        staleness_limit(-1, 8, 0)

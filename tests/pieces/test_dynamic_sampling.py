"""DAPO dynamic sampling as a piece (rlpt/pieces/dynamic_sampling.py): the keep mask over
degenerate groups, the registered piece's hook and metrics, and over-sampling's group selection."""
import types

import jax.numpy as jnp
import numpy as np

from loss_refs import cfg
from rlpt.pieces.dynamic_sampling import dynamic_sampling_mask, keep_mask, select_groups
from rlpt.registry import get


def test_dynamic_sampling_mask():
    r = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    keep, n_groups = dynamic_sampling_mask(r, 3)
    np.testing.assert_array_equal(np.asarray(keep), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    assert int(n_groups) == 2
    # the registered piece's hook (after the advantages): the same mask in the loss inputs
    piece = get("piece", "dynamic_sampling")
    assert piece.active(cfg(dynamic_sampling=True)) and not piece.active(cfg())
    data, per_prompt, metrics = piece.extras(
        types.SimpleNamespace(G=3), None, None, None, {"rewards": r}, r,
        cfg(dynamic_sampling_metric="raw"), None)
    np.testing.assert_array_equal(np.asarray(data["keep"]), np.asarray(keep))
    assert per_prompt == {} and float(metrics["effective_groups"]) == 2.0
    keep6, n6 = dynamic_sampling_mask(r, 6)
    np.testing.assert_array_equal(np.asarray(keep6), np.ones(12))
    assert int(n6) == 2


def test_keep_mask_metrics_and_atol():
    raw = jnp.array([0.2, 0.9, 0.0, 0.0, 0.5, 0.5])   # G = 2: correct (> 0) = 1 1 | 0 0 | 1 1
    shaped = jnp.array([1.0, 1.0, -1.0, -2.0, 1.0, 1.0])
    for metric, want in (("correct", [0, 0, 0, 0, 0, 0]), ("raw", [1, 1, 0, 0, 0, 0]),
                         ("shaped", [0, 0, 1, 1, 0, 0])):
        keep, n = keep_mask(raw, shaped, cfg(dynamic_sampling_metric=metric), 2)
        np.testing.assert_array_equal(np.asarray(keep), want, err_msg=metric)
        assert int(n) == sum(want) // 2
    # a spread within atol counts as constant; the correctness threshold is success_threshold
    keep, _ = keep_mask(raw, shaped, cfg(dynamic_sampling_metric="raw",
                                         dynamic_sampling_atol=0.8), 2)
    np.testing.assert_array_equal(np.asarray(keep), np.zeros(6))
    keep, _ = keep_mask(raw, shaped, cfg(success_threshold=0.3), 2)
    np.testing.assert_array_equal(np.asarray(keep), [1, 1, 0, 0, 0, 0])


def test_oversample_keeps_nondegenerate_groups_first():
    G = 2
    raw = jnp.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0])   # groups 1 and 3 are mixed
    batch = {"prompt": jnp.arange(4)[:, None] * 10}
    out = {"lengths": jnp.arange(8)}   # any pytree of [N] rows
    b, o, r, s, metrics = select_groups(batch, out, raw, raw * 2, cfg(), G, 2)
    np.testing.assert_array_equal(np.asarray(b["prompt"])[:, 0], [10, 30])
    np.testing.assert_array_equal(np.asarray(o["lengths"]), [2, 3, 6, 7])
    np.testing.assert_array_equal(np.asarray(r), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.asarray(s), [0.0, 2.0, 2.0, 0.0])
    assert float(metrics["sampled_groups"]) == 4.0
    assert float(metrics["sampled_nondegenerate_groups"]) == 2.0

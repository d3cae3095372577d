"""Label noise for preference experiments: flipped pair labels and flipped group scores.

Robust preference methods (cDPO, rDPO: arXiv 2403.00409; VRPO reward models; DRPO's double
robustness, arXiv 2506.01183) are about training on labels that are wrong with some rate. These
functions corrupt the *training* data with a known rate; held-out pairs and groups stay clean,
so an accuracy measured on them says how well the truth was learned.

* `flip_pairs(batch, rate, seed, step)`: each pair's chosen and rejected responses (and masks)
  are swapped with probability `rate` (config `pref.flip_rate`);
* `flip_group_scores(batch, rate, seed, step)`: in each group, with probability `rate`, the
  scores of the best response and of another response drawn uniformly are swapped, so a wrong
  response carries the gold label (config `rm.flip_rate`).

Both are deterministic in (seed, step) and return a new batch (the input is not modified).
`pref.flip_rate` and `rm.flip_rate` are optional config keys (read with `.get`, 0 = clean), so
run directories made before them keep their config.json.
"""
from typing import Dict

import numpy as np

PAIR_KEYS = (("chosen", "rejected"), ("chosen_mask", "rejected_mask"))


def _rng(seed: int, step: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, 1000 + stream])


def flip_pairs(batch: Dict[str, np.ndarray], rate: float, seed: int, step: int
               ) -> Dict[str, np.ndarray]:
    """The pairs of `batch` with chosen/rejected swapped on rows drawn with probability
    `rate`."""
    if rate <= 0:
        return batch
    flip = _rng(seed, step, 0).random(batch["chosen"].shape[0]) < rate
    out = dict(batch)
    for a, b in PAIR_KEYS:
        out[a] = np.where(flip[:, None], batch[b], batch[a])
        out[b] = np.where(flip[:, None], batch[a], batch[b])
    return out


def flip_group_scores(batch: Dict[str, np.ndarray], rate: float, seed: int, step: int
                      ) -> Dict[str, np.ndarray]:
    """`scores [B, K]` with, on rows drawn with probability `rate`, the best response's score
    swapped with that of another response of its group (uniform among the other K-1)."""
    if rate <= 0:
        return batch
    scores = np.array(batch["scores"], copy=True)
    B, K = scores.shape
    rng = _rng(seed, step, 1)
    flip = rng.random(B) < rate
    best = np.argmax(scores, axis=1)
    other = (best + 1 + rng.integers(0, K - 1, B)) % K   # any index but best
    rows = np.nonzero(flip)[0]
    scores[rows, best[rows]], scores[rows, other[rows]] = (scores[rows, other[rows]],
                                                           scores[rows, best[rows]])
    return dict(batch, scores=scores)

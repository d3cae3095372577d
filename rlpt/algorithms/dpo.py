"""DPO (Rafailov et al., arXiv 2305.18290): offline preference optimisation on (chosen, rejected)
pairs against a frozen reference (the SFT model), `l = -log sigmoid(beta h)` with the implicit
margin `h = (logp_w - ref_w) - (logp_l - ref_l)` (rlpt.losses.preference); beta 0.1.

A preference algorithm (`kind="preference"`, run by rlpt.preference.train): the generic step's
default hooks are DPO's (offline pairs, the reference's log-probs as `ref_w` / `ref_l`, the
loss's own held-out metrics), so the record has none. `dpo_pair_metrics` is the held-out pair
metric of the online algorithms (online_dpo, drpo).
"""
import jax

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.losses.preference import margin_of, pairwise_result, resolve_config

DEFAULTS = dict(beta=0.1)
DYNAMIC = frozenset({"beta"})


def dpo_losses(h, beta):
    """DPO (arXiv 2305.18290): `l = -log sigmoid(beta h)`; weight `sigmoid(-beta h)`."""
    return -jax.nn.log_sigmoid(beta * h), jax.nn.sigmoid(-beta * h)


@registry.register("loss", "dpo")
def dpo_loss(batch, cfg):
    """DPO (arXiv 2305.18290): mean of `-log sigmoid(beta h)`.
    Keys: logp_w, logp_l, ref_w, ref_l (optional mask)."""
    cfg = resolve_config(cfg, DEFAULTS, "dpo")
    h = margin_of(batch)
    losses, weights = dpo_losses(h, cfg.beta)
    return pairwise_result(losses, weights, h, batch, cfg.beta)


def dpo_pair_metrics(spec, params, ref_params, batch, c):
    """DPO's metrics (default beta) of held-out pairs at `params` against `ref_params`: the
    held-out metric of algorithms whose own loss is not a pairwise one (`accuracy`: h > 0)."""
    data = {k: batch[k] for k in ("prompt", "prompt_mask", "chosen", "chosen_mask",
                                  "rejected", "rejected_mask")}
    data["ref_w"], data["ref_l"] = spec.pair_logprobs(ref_params, data)
    data["logp_w"], data["logp_l"] = spec.pair_logprobs(params, data)
    return dpo_loss(data, None)[1]


ALGORITHM = registry.register("algorithm", "dpo")(Algorithm(
    "dpo", dpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference"))

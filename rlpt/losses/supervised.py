"""Supervised terms shared by several algorithms: token NLL and the entropy bonus (the `sft`
and `relift_sft` losses, the SFT term, ExPO and UFT use them).

`logp [N, T]` are log-probs of the target tokens (computed from logits / temperature upstream),
`mask [N, T]` selects the tokens that are trained on, `entropy [N, T]` the per-token entropy of
the policy (optional).
"""
from rlpt.losses.aggregation import aggregate


def sft_nll(logp_NT, mask_NT, mode="token_mean", l_norm=None):
    """Negative log-likelihood `aggregate(-logp, mask, mode)` (default: mean over target tokens)."""
    return aggregate(-logp_NT, mask_NT, mode, l_norm)


def entropy_bonus(entropy_NT, mask_NT, mode="token_mean", l_norm=None):
    """Aggregated entropy; a loss subtracts `coef * entropy_bonus(...)` to encourage exploration."""
    return aggregate(entropy_NT, mask_NT, mode, l_norm)


def nll_minus_entropy(logp_NT, mask_NT, entropy_NT, entropy_coef, mode="token_mean", l_norm=None):
    """`NLL - entropy_coef * entropy` and metrics; entropy may be None when entropy_coef == 0."""
    nll = sft_nll(logp_NT, mask_NT, mode, l_norm)
    metrics = {"nll": nll}
    loss = nll
    if entropy_NT is not None:
        ent = entropy_bonus(entropy_NT, mask_NT, mode, l_norm)
        metrics["entropy"] = ent
        loss = loss - entropy_coef * ent
    elif isinstance(entropy_coef, (int, float)) and entropy_coef:  # (traced: a static flag)
        raise KeyError("entropy_coef > 0 needs batch['entropy']")
    metrics["loss"] = loss
    return loss, metrics

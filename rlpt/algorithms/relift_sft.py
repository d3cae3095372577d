"""ReLIFT's SFT update (arXiv:2506.07527) as an algorithm of the fused step: token-mean NLL
minus 1e-3 * entropy, on the gold solutions or the step's correct samples (the hooks of
rlpt.algorithms.sft). ReLIFT itself (rlpt.algorithms.relift) runs this loss on its buffer."""
from rlpt import registry
from rlpt.algorithms import sft
from rlpt.losses.aggregation import completion_mask
from rlpt.losses.policy import resolve
from rlpt.losses.supervised import nll_minus_entropy

DEFAULTS = dict(loss_agg="token_mean", entropy_coef=1e-3, sft_source="gold")


@registry.register("loss", "relift_sft")
def relift_sft_loss(batch, cfg):
    """ReLIFT SFT step on buffered demonstrations: token-mean NLL - 1e-3 * entropy over
    `logp`/`mask` (the demonstration tokens) and `entropy`."""
    c = resolve(cfg, "relift_sft", DEFAULTS)
    return nll_minus_entropy(batch["logp"], completion_mask(batch), batch.get("entropy"),
                             c.entropy_coef, c.loss_agg, c.l_norm)



ALGORITHM = registry.register("algorithm", "relift_sft")(sft.ALGORITHM._replace(
    name="relift_sft", loss=relift_sft_loss, defaults=DEFAULTS))

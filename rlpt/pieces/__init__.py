"""Features of the generic step as small pure pieces (rlpt.algorithms.base.Piece), one file each.

A piece registered as ("piece", name) is a feature a config turns on (its `active(algo)`); a
piece registered as ("shaping", name) is a reward shaping an `algo.shaping` list names. Each
algorithm's record lists the pieces it always chains; the step runs the chain and never asks
which features exist (rlpt.algorithms.base.chain_of). Pieces shared by several algorithms live
here; a piece only one algorithm uses lives in that algorithm's file.

    kl                the reference model and its log-probs (the KL term of the loss)
    entropy           the policy's token entropies as a loss input (the entropy bonus)
    sft_term          + coef * NLL of the gold solution, for any algorithm
    dynamic_sampling  DAPO's keep mask over degenerate groups; `oversample`: keep B of k*B
    unlikeliness      "Rewarding the Unlikely" rank shaping (and its advantage variant)
    self_correction   MGRPO's layer-2 prompts (used by mgrpo and by the evaluation)
    mismatch          sampler/trainer mismatch corrections: `tis`, `icepop`, `seq_mis` weights
"""

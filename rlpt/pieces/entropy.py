"""The entropy bonus's input: the policy's per-token entropies from the minibatch forward
(`loss_inputs=("entropy",)`); the loss subtracts `entropy_coef * aggregate(entropy)`.
`algo.entropy_term` None is set from `entropy_coef` by `validate` (as the KL term's flag)."""
from rlpt import registry
from rlpt.algorithms.base import Piece
from rlpt.pieces.kl import resolve_term_flag


def validate(cfg):
    resolve_term_flag(cfg, "entropy_term", ("entropy_coef",))


PIECE = registry.register("piece", "entropy")(Piece(
    "entropy", active=lambda a: bool(a.get("entropy_term")), validate=validate,
    loss_inputs=("entropy",)))

"""The SFT term, for any algorithm: `loss += sft_term_coef * NLL(gold solution | prompt)`
(token mean at temperature 1, over the task's gold `solution` tokens). `algo.sft_term` None is
set from `sft_term_coef` by `validate`."""
from rlpt import registry
from rlpt.algorithms.base import Piece, gold_logprobs, solution_rows
from rlpt.errors import UserError
from rlpt.losses.supervised import sft_nll
from rlpt.pieces.kl import resolve_term_flag


def validate(cfg):
    if float(cfg.algo.get("sft_term_coef", 0.0)) < 0:
        raise UserError(f"config algo.sft_term_coef: {cfg.algo.sft_term_coef} must be >= 0")
    resolve_term_flag(cfg, "sft_term", ("sft_term_coef",))


def extras(spec, state, batch, out, data, raw_N, c, key):
    return data, solution_rows(batch), {}


def loss_term(spec, params, mb, mbp, c):
    nll = sft_nll(gold_logprobs(spec, params, mbp)[0], mbp["sol_mask"])
    return c.sft_term_coef * nll, {"sft_term_nll": nll}


PIECE = registry.register("piece", "sft_term")(Piece(
    "sft_term", defaults=dict(sft_term_coef=0.0, sft_term=None),
    dynamic=frozenset({"sft_term_coef"}), active=lambda a: bool(a.get("sft_term")),
    validate=validate, extras=extras, loss_term=loss_term))

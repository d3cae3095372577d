"""What an algorithm is: a record of pure functions and the pieces it chains.

Like optax's `GradientTransformation` and `chain`, an `Algorithm` is a small named tuple of
functions, built by constructing it (or `._replace` on another), never subclassed, and a
`Piece` is one feature (a reward shaping, a group filter, the KL reference, the entropy input,
the SFT term) with the same hooks. The generic step (rlpt.step) runs the CHAIN of a config,
`chain_of(static_algo, algorithm)`: the shapings named by `algo.shaping` in order, every
registered feature piece whose `active(algo)` is true, the algorithm's own `pieces`, and last the
algorithm's own hooks. It calls each stage of every piece in chain order and never asks which
features exist. Every hook is optional; in the order the step calls them:

  before_rollout(spec, state, batch, c) -> batch                           e.g. UFT hint prompts
  reward_inputs(spec, batch, tokens, mask, c) -> (tokens, mask)            what the reward reads
  shape(spec, state, r_N, raw_N, out, c) -> (r_N, metrics)                 reward shaping
  select(spec, batch, out, raw_N, r_N, c) -> (batch, out, raw_N, r_N, metrics)   group selection
  before_advantages(spec, state, batch, out, data, c) -> (data, adv_extras, metrics)
        inputs of the advantage (the reference log-probs, PPO's values and returns)
  extras(spec, state, batch, out, data, raw_N, c, key) -> (data, per_prompt, metrics)
        per-row inputs of the loss after the advantages (keep mask, teacher log-probs, layer 2)
  loss_batch(spec, params, mb, mbp, c) -> dict     the loss's inputs on one minibatch (the
        algorithm's own only; default `policy_loss_batch`)
  token_weight(spec, lb, c) -> (weight [N, T], metrics)   a stop-gradient per-token weight of
        the policy-gradient term from the loss inputs `lb` (pieces only; the step multiplies
        the chain's weights into `lb["token_weight"]`, rlpt.losses.policy: e.g. the sampler/
        trainer mismatch corrections of rlpt.pieces.mismatch)
  loss_term(spec, params, mb, mbp, c) -> (loss_add, metrics)              e.g. the SFT term
  after_update(spec, params, opt_state, algo_state, batch, raw_N, c, hp, frozen)
        -> (params, opt_state, algo_state, metrics)                        e.g. ReLIFT's SFT

`params` are the trainable parameters (with LoRA, rlpt.models.lora: the adapters, and the base in
`frozen["base"]`). The loss hooks (`loss_batch`, `loss_term`) receive them already attached to
the base; a hook that runs the policy from `state` (or, in `after_update`, from `params` and
`frozen`) attaches them itself with `rlpt.state.model_params(params, frozen)`, and reads the
reference with `rlpt.state.reference_params(frozen)`.

and on the host, once: `validate(cfg)` (config errors "config algo.<key>: ..." before
compiling), `preflight(cfg)` (files a run needs), `frozen_models(cfg, model_cfg, params) ->
{role: (ModelConfig, params)}`, `init(spec, params, example_batch, seed) -> (params, algo_state)`.

`c` is the algorithm's config seen through `AlgoConfig`: static fields (names, shapes, which
terms exist) as Python values, dynamic ones as traced arrays from the step's `hp` argument, so a
new value never recompiles. Which fields are dynamic is DECLARED (`dynamic` of the algorithm and
of the pieces, `rlpt.losses.policy.SURROGATE_DYNAMIC`), never guessed from the Python type.
"""
from typing import Any, Callable, Dict, FrozenSet, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from rlpt.logprobs import completion_logprobs, rows_logprobs

HOOKS = ("before_rollout", "reward_inputs", "shape", "select", "before_advantages", "extras",
         "loss_term", "after_update")


class Piece(NamedTuple):
    """One feature of the step (module doc). `active(static_algo) -> bool` says whether a
    config turns it on (None: only when an algorithm lists it or names it in `algo.shaping`);
    `loss_inputs` names what it needs from the minibatch forward ("entropy")."""
    name: str
    defaults: Dict[str, Any] = {}
    dynamic: FrozenSet[str] = frozenset()
    active: Optional[Callable] = None
    validate: Optional[Callable] = None
    frozen_models: Optional[Callable] = None
    loss_inputs: Tuple[str, ...] = ()
    before_rollout: Optional[Callable] = None
    reward_inputs: Optional[Callable] = None
    shape: Optional[Callable] = None
    select: Optional[Callable] = None
    before_advantages: Optional[Callable] = None
    extras: Optional[Callable] = None
    loss_term: Optional[Callable] = None
    after_update: Optional[Callable] = None
    token_weight: Optional[Callable] = None


class Algorithm(NamedTuple):
    """An algorithm (module doc). `kind` says which trainer runs it: "policy_gradient" (the
    fused RL step), "preference" or "reward_model" (rlpt.preference); `pieces` the features it
    always chains; `defaults` its paper defaults over the shared ones; `dynamic` which of its
    own fields are dynamic hyperparameters."""
    name: str
    loss: Callable
    defaults: Dict[str, Any] = {}
    dynamic: FrozenSet[str] = frozenset()
    kind: str = "policy_gradient"
    pieces: Tuple[Piece, ...] = ()
    validate: Optional[Callable] = None
    preflight: Optional[Callable] = None
    frozen_models: Optional[Callable] = None
    init: Optional[Callable] = None
    loss_batch: Optional[Callable] = None
    before_rollout: Optional[Callable] = None
    reward_inputs: Optional[Callable] = None
    shape: Optional[Callable] = None
    select: Optional[Callable] = None
    before_advantages: Optional[Callable] = None
    extras: Optional[Callable] = None
    loss_term: Optional[Callable] = None
    after_update: Optional[Callable] = None
    trainer_hooks: Dict[str, Callable] = {}   # hooks of the preference / reward-model trainers


def own_piece(algorithm: Algorithm) -> Piece:
    """The algorithm's own hooks as the last piece of its chain."""
    return Piece(algorithm.name, frozen_models=algorithm.frozen_models,
                 **{h: getattr(algorithm, h) for h in HOOKS})


def feature_pieces() -> list:
    """Every registered feature piece (rlpt/pieces/), sorted by name."""
    from rlpt import registry
    return [registry.get("piece", n) for n in registry.names("piece")]


def chain_of(static_algo, algorithm: Algorithm) -> Tuple[Piece, ...]:
    """The pieces the step runs for a config (module doc), in order."""
    from rlpt import registry
    shapings = [registry.get("shaping", n) for n in static_algo.get("shaping", ())]
    features = [p for p in feature_pieces() if p.active is not None and p.active(static_algo)]
    return tuple(shapings + features + list(algorithm.pieces) + [own_piece(algorithm)])


def accumulation_blocker(algorithm: Algorithm, chain) -> str:
    """Why a step cannot accumulate gradients over row microbatches ("" when it can): the
    accumulation differentiates through the default loss inputs (the rows' completion log-probs
    and entropies), so an algorithm with its own `loss_batch` or a piece with a `loss_term`
    (another forward inside the loss) is out of its reach."""
    if algorithm.loss_batch is not None:
        return f"algorithm {algorithm.name!r} builds its own loss inputs (loss_batch)"
    terms = [p.name for p in chain if p.loss_term is not None]
    return f"piece(s) {terms} add a loss term with its own forward" if terms else ""


def check_files(cfg) -> None:
    """What a run needs from outside its config, checked before anything compiles or trains:
    the algorithm's `preflight(cfg)` (e.g. KDRL's teacher checkpoint). `rlpt.config.validate`
    stays a pure check of the config, so a config that names a file still to be made validates
    anywhere; rlpt.train.run and rlpt.sweep.main.run_sweep call this."""
    from rlpt import registry
    preflight = registry.get("algorithm", cfg.algo.name).preflight
    if preflight is not None:
        preflight(cfg)


def dynamic_fields(name: str) -> FrozenSet[str]:
    """The declared dynamic hyperparameters of algorithm `name`: its own `dynamic`, the shared
    surrogate's and every feature piece's (shapings included)."""
    from rlpt import registry
    from rlpt.losses.policy import SURROGATE_DYNAMIC
    out = set(SURROGATE_DYNAMIC) | set(registry.get("algorithm", name).dynamic)
    for kind in ("piece", "shaping"):
        for n in registry.names(kind):
            out |= set(registry.get(kind, n).dynamic)
    return frozenset(out)


def is_dynamic(key: str, value, dynamic: FrozenSet[str]) -> bool:
    """A field is dynamic iff it is declared so and holds a number (None / a bool means the term
    is absent or a switch: static)."""
    return key in dynamic and isinstance(value, (int, float)) and not isinstance(value, bool)


def split_algo_config(algo) -> tuple:
    """`cfg.algo` -> (static dict, dynamic dict of float32 scalars), by declaration."""
    items = dict(algo.items())
    dynamic = dynamic_fields(items["name"])
    static = {k: v for k, v in items.items() if not is_dynamic(k, v, dynamic)}
    dyn = {k: jnp.asarray(v, jnp.float32) for k, v in items.items() if is_dynamic(k, v, dynamic)}
    return static, dyn


class AlgoConfig:
    """Read-only view of one algorithm config: static fields and the dynamic `hp` values, with
    attribute access, `get` and `items` (what the losses' `resolve` reads)."""

    def __init__(self, static: Dict[str, Any], dynamic: Dict[str, Any]):
        self._fields = dict(static)
        self._fields.update(dynamic)

    def __getattr__(self, key):
        try:
            return self.__dict__["_fields"][key]
        except KeyError:
            raise AttributeError(f"algo config has no field {key!r}") from None

    def __contains__(self, key):
        return key in self._fields

    def get(self, key, default=None):
        return self._fields.get(key, default)

    def items(self):
        return self._fields.items()


# ------------------------------------------------------------------ pieces hooks build on

def policy_outputs(spec, params, tokens, valid, completion_len: int):
    """(logp, entropy or None) of the completion tokens of rollout rows at the sampling
    temperature, each prompt computed once per group: what the default loss differentiates."""
    return completion_logprobs(spec.model_cfg, params, tokens, valid,
                               tokens.shape[1] - completion_len, spec.scfg.temperature,
                               with_entropy=spec.needs("entropy"), group_size=spec.G)


def policy_loss_batch(spec, params, mb, c, logp=None, entropy=None) -> dict:
    """The policy-gradient loss inputs of minibatch rows `mb`: current log-probs (each prompt
    computed once per group, unless `logp` is given), old log-probs, mask, advantages, rewards,
    and the optional ref/teacher log-probs, keep mask, the sampler's log-probs `sampler_logp`
    and entropy (when a piece needs it), and each token's transition `transitions` when an
    algorithm put it in the rows (rlpt.algorithms.lightning_rl)."""
    if logp is None:
        logp, entropy = policy_outputs(spec, params, mb["tokens"], mb["valid"],
                                       mb["mask"].shape[1])
    lb = dict(logp=logp, mask=mb["mask"], advantages=mb["advantages"], rewards=mb["rewards"],
              old_logp=mb["old_logp"] if spec.multi_update else jax.lax.stop_gradient(logp))
    for k in ("ref_logp", "teacher_logp", "keep", "sampler_logp", "transitions"):
        if k in mb:
            lb[k] = mb[k]
    if spec.needs("entropy"):
        lb["entropy"] = entropy
    return lb


def rollout_logprobs(spec, params, tokens, valid, width):
    """Stop-gradient log-probs of the completion tokens of rollout rows (each prompt computed
    once per group) at the sampling temperature: old or reference log-probs."""
    return jax.lax.stop_gradient(completion_logprobs(
        spec.model_cfg, params, tokens, valid, width, spec.scfg.temperature,
        group_size=spec.G)[0])


def solution_rows(batch) -> dict:
    """Per-prompt teacher-forcing rows of the gold solutions: `sol_tokens`, `sol_valid`,
    `sol_mask` (what supervised terms read)."""
    return dict(sol_tokens=jnp.concatenate([batch["prompt"], batch["solution"]], axis=1),
                sol_valid=jnp.concatenate([batch["prompt_mask"], batch["solution_mask"]],
                                          axis=1).astype(bool),
                sol_mask=batch["solution_mask"].astype(jnp.float32))


def gold_logprobs(spec, params, mbp, with_entropy=False):
    """Log-probs (temperature 1) of the gold solution tokens of per-prompt rows `mbp`."""
    return rows_logprobs(spec.model_cfg, params, {"tokens": mbp["sol_tokens"],
                         "valid": mbp["sol_valid"], "mask": mbp["sol_mask"]}, 1.0, with_entropy)


def flatten_prefixed(d, prefix):
    """`{prefix + k: [b, e, ...]}` -> `{k: [b*e, ...]}`."""
    return {k[len(prefix):]: v.reshape((-1,) + v.shape[2:]) for k, v in d.items()
            if k.startswith(prefix)}


def iteration_key(state, i: int):
    """Sub-key `i` of the iteration's rng `fold_in(state.rng, state.step)` (rlpt.step)."""
    return jax.random.fold_in(jax.random.fold_in(state.rng, state.step), i)


def correct_of(raw_N, algo):
    """"Correct" always means the task reward before shaping exceeds `algo.success_threshold`."""
    return raw_N > algo.get("success_threshold", 0.0)

"""What an algorithm is: a record of pure functions the generic step (rlpt.step) calls.

Like optax's `GradientTransformation`, an `Algorithm` is a small named tuple of functions,
built by constructing it (or `._replace` on another), never subclassed. Every hook is optional;
`None` means the step's generic behaviour. In the order the step calls them:

  validate(cfg)                      config errors ("config algo.<key>: ...") before compiling
  frozen_models(cfg, model_cfg, params) -> {role: (ModelConfig, params)}   host side, once
  init(spec, params, example_batch, seed) -> (params, algo_state)          extra params/state
  before_rollout(spec, state, batch, c) -> batch                           e.g. UFT hint prompts
  reward_inputs(spec, batch, tokens, mask, c) -> (tokens, mask)            what the reward reads
  before_advantages(spec, state, batch, out, data, c) -> (data, adv_extras, metrics)   PPO values
  extras(spec, state, batch, out, data, raw_N, c, key) -> (data, per_prompt, metrics)
        extra rollouts and per-row inputs of the loss (teacher log-probs, layer-2 samples)
  loss_batch(spec, params, mb, mbp, c) -> dict     the loss's inputs on one minibatch
  loss(batch, c) -> (loss, metrics)                a pure loss of arrays (rlpt.losses)
  after_update(spec, params, opt_state, algo_state, batch, raw_N, c, hp)
        -> (params, opt_state, algo_state, metrics)                        e.g. ReLIFT's SFT

`c` is the algorithm's config seen through `AlgoConfig`: static fields (names, shapes, which
terms exist) as Python values, dynamic ones (every float: beta, clip ranges, coefficients) as
traced arrays from the step's `hp` argument, so a new value never recompiles. `spec` is the
static `rlpt.step.StepSpec`; `data` holds per-row arrays [N, ...], `per_prompt` per-prompt arrays
[B, ...] (minibatched by group), `mb`/`mbp` their minibatch slices.
"""
from typing import Any, Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rlpt.logprobs import completion_logprobs, rows_logprobs

# Fields of cfg.algo that say whether a term exists (static; resolved by rlpt.config.validate
# from the coefficient when left at None): the KL to a reference model (beta, PPO's kl_coef),
# the entropy bonus (entropy_coef) and the SFT term on the gold solution (sft_term_coef).
TERM_FLAGS = {"kl_term": ("beta", "kl_coef"), "entropy_term": ("entropy_coef",),
              "sft_term": ("sft_term_coef",)}


class Algorithm(NamedTuple):
    name: str
    loss: Callable
    defaults: Dict[str, Any] = {}
    validate: Optional[Callable] = None
    preflight: Optional[Callable] = None   # preflight(cfg): files etc. a run needs (check_files)
    frozen_models: Optional[Callable] = None
    init: Optional[Callable] = None
    before_rollout: Optional[Callable] = None
    reward_inputs: Optional[Callable] = None
    before_advantages: Optional[Callable] = None
    extras: Optional[Callable] = None
    loss_batch: Optional[Callable] = None
    after_update: Optional[Callable] = None


def check_files(cfg) -> None:
    """What a run needs from outside its config, checked before anything compiles or trains:
    the algorithm's `preflight(cfg)` (e.g. KDRL's teacher checkpoint). `rlpt.config.validate`
    stays a pure check of the config, so a config that names a file still to be made validates
    anywhere; rlpt.train.run and rlpt.sweep.run_sweep call this."""
    from rlpt import registry
    preflight = registry.get("algorithm", cfg.algo.name).preflight
    if preflight is not None:
        preflight(cfg)


def is_dynamic(value) -> bool:
    """A config value is a dynamic hyperparameter iff it is a float (bools and ints, strings,
    tuples and None are static)."""
    return isinstance(value, float)


def split_algo_config(algo) -> tuple:
    """`cfg.algo` -> (static dict, dynamic dict of float32 scalars)."""
    items = dict(algo.items())
    static = {k: v for k, v in items.items() if not is_dynamic(v)}
    dynamic = {k: jnp.asarray(v, jnp.float32) for k, v in items.items() if is_dynamic(v)}
    return static, dynamic


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

def policy_loss_batch(spec, params, mb, c, logp=None, entropy=None) -> dict:
    """The policy-gradient loss inputs of minibatch rows `mb`: current log-probs (each prompt
    computed once per group, unless `logp` is given), old log-probs, mask, advantages, rewards,
    and the optional ref/teacher log-probs, keep mask and entropy."""
    if logp is None:
        width = mb["tokens"].shape[1] - mb["mask"].shape[1]
        logp, entropy = completion_logprobs(spec.model_cfg, params, mb["tokens"], mb["valid"],
                                            width, spec.scfg.temperature,
                                            with_entropy=spec.flag("entropy_term"),
                                            group_size=spec.G)
    lb = dict(logp=logp, mask=mb["mask"], advantages=mb["advantages"], rewards=mb["rewards"],
              old_logp=mb["old_logp"] if spec.multi_update else jax.lax.stop_gradient(logp))
    for k in ("ref_logp", "teacher_logp", "keep"):
        if k in mb:
            lb[k] = mb[k]
    if spec.flag("entropy_term"):
        lb["entropy"] = entropy
    return lb


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

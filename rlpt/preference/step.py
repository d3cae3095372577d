"""The jitted preference-optimisation step: pairs in, optimizer update out, one XLA program.

    state, metrics = step(state, batch, hp)   # hp = {"optim": optim_hparams(cfg.optim),
                                              #       "algo": rlpt.preference.config.hparams}

The step is generic: what an algorithm does differently is a hook of its record (rlpt/algorithms/
<name>.py, `Algorithm(kind="preference", trainer_hooks={...})`), looked up by `cfg.algo.name`;
the step never asks which algorithm it runs. The state is rlpt.state.TrainState with the frozen
models of `frozen_roles` ("reference": the reference policy, Pre-DPO's guide; "generator": online
DPO's generator copy; "reward_model": DRPO's frozen RM). `hp["optim"]` is the optimizer's
dynamic hyperparameters (rlpt.optim), `hp["algo"]` (optional; without it the config's values are
compiled in) the algorithm's declared dynamic ones: a new value is a new argument, never a
recompile.

Hooks (`trainer_hooks` of the record; every one optional, the default in brackets). `c` is the
algorithm's config (rlpt.preference.records.view), `spec` this step object (model configs,
`sample`, `sequence_logprobs`, `pair_logprobs`, `pairwise_data`, `task_reward`, `rm_score`):

  ref_keys(c) -> (key_w, key_l) | None      where the "reference" model's log-probs of chosen
        and rejected go in the pairwise data (Pre-DPO: guide_w / guide_l; None: reference-free)
        [("ref_w", "ref_l")]
  frozen_roles(c) -> tuple                  the frozen models the step reads
        [("reference",), () when ref_keys is None]
  num_samples(c) -> int | None              online samples per prompt drawn inside the step
        [None: offline, no rollout]
  needs_task_reward(c) -> bool              the step scores samples with the task reward [False]
  prepare(spec, state, batch, c, key) -> (data, metrics, frozen updates)
        everything outside the gradient: the loss's data, e.g. sampled pairs [pairwise_prepare:
        the batch's pairs with the reference's log-probs]
  loss_inputs(spec, params, data, c) -> dict   the loss batch at `params`
        [pairwise_loss_inputs: logp_w / logp_l of one forward over the 2B rows]
  eval_metrics(spec, params, ref_params, batch, c) -> metrics   held-out pair metrics
        [pairwise_eval: the algorithm's own loss on held-out pairs]
  models(cfg, trainer) -> {role: params}    host, once: frozen models made by phases before the
        main one (Pre-DPO's guide, DRPO's reward model; rlpt.preference.train.Trainer) [{}]

The loss is the record's `loss(loss_inputs, c)` (objectives.md section 4). With
`h = (logp_w - ref_w) - (logp_l - ref_l)` and sequence log-probs `logp = sum_t log pi(y_t | x,
y_<t)` over response tokens (teacher-forced, temperature 1), offline batches are prompt
(left-padded) + chosen / rejected (right-padded, with masks). Every loss logs `grad_weight`, the
mean per-pair gradient weight (`sigmoid(-beta h)` for DPO; see rlpt.losses.preference), and the
step `pair_frac`, the fraction of pairs that entered the loss.
"""
from typing import Dict, Optional

import jax
import jax.numpy as jnp

from rlpt import sharding
from rlpt.logprobs import completion_logprobs
from rlpt.models.config import ModelConfig
from rlpt.optim import apply_update
from rlpt.preference.records import PREFERENCE, algorithm_of, view
from rlpt.preference.reward_model import score as rm_score
from rlpt.sampling import SamplingConfig, sample
from rlpt.state import TrainState, frozen_copy, model_params, new_state, reference_params

PAIR_KEYS = ("prompt", "prompt_mask", "chosen", "chosen_mask", "rejected", "rejected_mask")
LOSS_KEYS = ("ref_w", "ref_l", "guide_w", "guide_l", "len_w", "len_l", "mask")


def fresh_state(params, optimizer, seed: int, **frozen) -> TrainState:
    """A step-0 TrainState of `params` with the frozen models given by role (a None role is
    left out). Copies every model pytree: a jitted step donates its state, callers keep theirs
    (and two roles given the same pytree do not alias)."""
    return new_state(frozen_copy(params), optimizer, seed,
                     frozen={k: frozen_copy(v) for k, v in frozen.items() if v is not None})


def sequence_logprobs(model_cfg: ModelConfig, params, prompt, prompt_mask, response, resp_mask):
    """`(sum_t m_t log pi(y_t | x, y_<t) [N], per-token masked log-probs [N, R])`."""
    tokens = jnp.concatenate([prompt, response], axis=1).astype(jnp.int32)
    valid = jnp.concatenate([prompt_mask, resp_mask], axis=1).astype(bool)
    logp, _ = completion_logprobs(model_cfg, params, tokens, valid, prompt.shape[1], 1.0)
    tok = logp * resp_mask.astype(logp.dtype)
    return tok.sum(axis=-1), tok


def pair_logprobs(model_cfg: ModelConfig, params, data):
    """Sequence log-probs of chosen and rejected, `(logp_w [B], logp_l [B])`, in one forward."""
    two = lambda a, b: jnp.concatenate([a, b], axis=0)
    seq, _ = sequence_logprobs(
        model_cfg, params, two(data["prompt"], data["prompt"]),
        two(data["prompt_mask"], data["prompt_mask"]), two(data["chosen"], data["rejected"]),
        two(data["chosen_mask"], data["rejected_mask"]))
    b = data["prompt"].shape[0]
    return seq[:b], seq[b:]


# ------------------------------------------------------------------------ the default hooks

def default_ref_keys(c):
    return ("ref_w", "ref_l")


def pairwise_prepare(spec, state, batch, c, key):
    """Offline pairs: the batch's pairs with the reference's log-probs (no rollout)."""
    return spec.pairwise_data(state.frozen, batch, c), {}, {}


def pairwise_loss_inputs(spec, params, data, c):
    """`logp_w`, `logp_l` at `params` (one forward over the 2B rows) and the prepared keys."""
    logp_w, logp_l = spec.pair_logprobs(params, data)
    lb = {k: v for k, v in data.items() if k in LOSS_KEYS}
    return dict(lb, logp_w=logp_w, logp_l=logp_l)


def pairwise_eval(spec, params, ref_params, batch, c):
    """The algorithm's own loss metrics on held-out pairs (`accuracy`: margin > 0)."""
    return spec.loss(params, spec.pairwise_data({"reference": ref_params}, batch, c), c)[1]


DEFAULT_HOOKS = dict(
    ref_keys=default_ref_keys,
    num_samples=lambda c: None,
    needs_task_reward=lambda c: False,
    prepare=pairwise_prepare,
    loss_inputs=pairwise_loss_inputs,
    eval_metrics=pairwise_eval,
    models=lambda cfg, trainer: {},
)


def hook_of(algorithm, name: str):
    """Hook `name` of a preference record: its own, else the default (module doc)."""
    if name == "frozen_roles":
        return lambda c: frozen_roles_of(algorithm, c)
    return algorithm.trainer_hooks.get(name, DEFAULT_HOOKS[name])


def frozen_roles_of(algorithm, c) -> tuple:
    """The frozen models the step of `algorithm` reads: its `frozen_roles(c)`, by default the
    "reference" unless its `ref_keys(c)` is None (reference-free)."""
    own = algorithm.trainer_hooks.get("frozen_roles")
    if own is not None:
        return tuple(own(c))
    return ("reference",) if hook_of(algorithm, "ref_keys")(c) is not None else ()


class PreferenceStep:
    """The step of `algo` (a ConfigDict: `name`, a registered preference algorithm, and its
    knobs over the record's defaults); `spec` of its hooks.

    `sampling` (a ConfigDict like base_config().sampling) is needed by algorithms that sample
    (`num_samples`), `reward_fn` (a task reward, `fn(tokens, mask, target, target_len) -> (r,
    aux)`) by those that score with it (`needs_task_reward`), `rm_model_cfg` by those that read
    a frozen "reward_model".
    """

    def __init__(self, model_cfg: ModelConfig, algo, optimizer, sampling=None, reward_fn=None,
                 rm_model_cfg: Optional[ModelConfig] = None):
        self.algorithm = algorithm_of(algo.name, PREFERENCE)
        self.model_cfg, self.algo, self.optimizer = model_cfg, algo, optimizer
        self.reward_fn, self.rm_model_cfg = reward_fn, rm_model_cfg
        c = self.config()
        self.roles = tuple(self.hook("frozen_roles")(c))
        self.ref_keys = self.hook("ref_keys")(c)
        n = self.hook("num_samples")(c)
        name = algo.name
        if n is not None:
            if sampling is None:
                raise ValueError(f"{name} samples online: needs a sampling config")
            self.scfg = SamplingConfig(
                max_new_tokens=sampling.max_new_tokens, num_samples=int(n),
                temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                stop_tokens=tuple(sampling.stop_tokens), pad_id=sampling.pad_id,
                loop=sampling.loop)
        if self.hook("needs_task_reward")(c) and reward_fn is None:
            raise ValueError(f"{name} scores samples with the task reward: needs reward_fn")
        if "reward_model" in self.roles and rm_model_cfg is None:
            raise ValueError(f"{name} reads a frozen reward model: needs rm_model_cfg")

    def hook(self, name):
        return hook_of(self.algorithm, name)

    def config(self, dynamic=None):
        """`c`: the algorithm's config with `dynamic` (hp["algo"]) over it."""
        return view(self.algorithm, self.algo, dynamic)

    # -- what hooks build on -----------------------------------------------------------------
    def sequence_logprobs(self, params, prompt, prompt_mask, response, resp_mask):
        return sequence_logprobs(self.model_cfg, params, prompt, prompt_mask, response,
                                 resp_mask)

    def pair_logprobs(self, params, data):
        return pair_logprobs(self.model_cfg, params, data)

    def sample(self, params, prompt, prompt_mask, key):
        """`self.scfg.num_samples` samples per prompt from `params` (no gradient)."""
        return sample(self.model_cfg, jax.lax.stop_gradient(params), prompt, prompt_mask, key,
                      self.scfg)

    def task_reward(self, tokens, mask, target, target_len):
        return self.reward_fn(tokens, mask, target, target_len)

    def rm_score(self, rm_params, prompt, prompt_mask, response, resp_mask):
        return rm_score(self.rm_model_cfg, rm_params, prompt, prompt_mask, response, resp_mask)

    def pairwise_data(self, frozen, batch, c):
        """The loss data of pairs `batch` (PAIR_KEYS, optional `mask`): lengths, and the
        frozen "reference"'s log-probs under `ref_keys` when the algorithm has a reference."""
        data = {k: batch[k] for k in PAIR_KEYS}
        data["len_w"] = batch["chosen_mask"].sum(axis=1).astype(jnp.float32)
        data["len_l"] = batch["rejected_mask"].sum(axis=1).astype(jnp.float32)
        if "mask" in batch:
            data["mask"] = batch["mask"].astype(jnp.float32)
        if self.ref_keys is not None:
            ref = jax.lax.stop_gradient(self.pair_logprobs(reference_params(frozen), data))
            data[self.ref_keys[0]], data[self.ref_keys[1]] = ref
        return data

    # -- prepare, loss, step -----------------------------------------------------------------
    def prepare(self, state: TrainState, batch, key, c=None):
        """Everything outside the gradient: (loss data, metrics, frozen models to update)."""
        return self.hook("prepare")(self, state, batch, self.config() if c is None else c,
                                      key)

    def loss(self, params, data, c=None):
        """(loss, metrics) of the algorithm's loss at `params` given prepared `data`."""
        c = self.config() if c is None else c
        loss, metrics = self.algorithm.loss(self.hook("loss_inputs")(self, params, data, c), c)
        metrics["pair_frac"] = jnp.mean(data["mask"]) if "mask" in data else jnp.float32(1.0)
        return loss, metrics

    def __call__(self, state: TrainState, batch, hp) -> (TrainState, Dict):
        """One update; `hp = {"optim": ..., "algo": ...}` (module doc)."""
        c = self.config(hp.get("algo"))
        key = jax.random.fold_in(state.rng, state.step)
        data, metrics, frozen = self.prepare(state, batch, key, c)
        # the trainable params (LoRA: the adapters) are the argument, attached inside
        loss_of = lambda p: self.loss(model_params(p, state.frozen), data, c)
        (loss, m), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        params, opt_state, guard = apply_update(self.optimizer, loss, grads, state.opt_state,
                                                state.params, hp["optim"])
        metrics.update(m, loss=loss, **guard)
        new = state.replace(params=params, opt_state=opt_state,
                            frozen=dict(state.frozen, **frozen) if frozen else state.frozen,
                            step=state.step + 1)
        return new, metrics

    def eval_metrics(self, params, ref_params, batch):
        """Held-out pair metrics at `params` (no update), by the `eval_metrics` hook;
        `accuracy` = fraction of pairs with margin > 0."""
        return self.hook("eval_metrics")(self, params, ref_params, batch, self.config())


# ---------------------------------------------------------------------------------------------
# jit with explicit shardings


def batch_shardings(batch, mesh):
    """Leading axis of every batch array over the mesh's batch axes."""
    return {k: sharding.batch_sharding(mesh, jnp.ndim(v), jnp.shape(v)[0], what=f"batch[{k!r}]")
            for k, v in batch.items()}


def jit_step(step_fn, state=None, batch=None, mesh=None, donate: bool = True):
    """`jax.jit(step_fn)` of a `step(state, batch, hp)`; with a mesh, explicit in/out
    shardings: the state's (as placed by rlpt.loop.place_state), the batch's leading axis over
    the batch axes, `hp` as given, metrics replicated."""
    kw = {}
    if mesh is not None:
        st_sh = jax.tree_util.tree_map(lambda x: x.sharding, state)
        kw = dict(in_shardings=(st_sh, batch_shardings(batch, mesh), None),
                  out_shardings=(st_sh, sharding.replicated(mesh)))
    return jax.jit(step_fn, donate_argnums=(0,) if donate else (), **kw)

"""The jitted preference-optimisation step: pairs in, optimizer update out, one XLA program.

    state, metrics = step(state, batch, hp)       # hp = {"optim": optim_hparams(cfg.optim)}

The state is rlpt.state.TrainState; its frozen models by role (`fresh_state`): "reference" (the
reference policy, Pre-DPO's guide; absent for SimPO), "generator" (online DPO's generator copy),
"reward_model" (DRPO's frozen RM). `hp["optim"]` is the optimizer's dynamic hyperparameters
(rlpt.optim): a new learning rate is a new argument, never a recompile.

Losses come from the registry by name (rlpt.losses.preference, spec objectives.md section 4).
With `h = (logp_w - ref_w) - (logp_l - ref_l)` and sequence log-probs
`logp = sum_t log pi(y_t | x, y_<t)` over response tokens (teacher-forced, temperature 1):

* offline pairwise, `algo.name` in dpo / ipo / cdpo / rdpo / simpo / pre_dpo: batch = prompt
  (left-padded) + chosen / rejected (right-padded, with masks). Policy and reference log-probs of
  both responses are computed inside (one forward over the 2B rows each); pre_dpo's reference
  is the guide (`frozen["reference"]` holds it: arXiv 2504.15843); simpo has none.
* online / semi-online DPO (arXiv 2506.21495), `algo.name = "online_dpo"`: N samples per prompt
  from the generator copy `frozen["generator"]`, which is set to the policy first when
  `should_sync(step, algo.sync_every)` (s=1 online, s=None offline: pairs sampled from the
  initial model); scored by the task reward; best vs worst (`best_worst_pairs`, random
  tie-breaking); prompts without contrast are masked out of `algo.loss` (default "dpo").
* DRPO (arXiv 2506.01183), `algo.name = "drpo"`: (y1, y2) = the dataset pair in a random order,
  Z = 1 when y1 is the chosen one; M online samples y* ~ pi (the sampler, current params); the
  preference model g is `algo.g`: "task_reward" -> `g(y, y') = clip(0.5 + 0.5 (R(y) - R(y')), 0,
  1)` (win 1, tie 0.5, loss 0 for 0/1 rewards), or "reward_model" -> `sigmoid(r(x,y) - r(x,y'))`
  with a frozen Bradley-Terry RM in `frozen["reward_model"]` (rlpt.preference.reward_model).

Every loss logs `grad_weight`, the mean per-pair gradient weight (`sigmoid(-beta h)` for DPO; see
rlpt.losses.preference), and `pair_frac` the fraction of pairs that entered the loss.
"""
from typing import Dict, Optional

import jax
import jax.numpy as jnp

from rlpt import registry, sharding
from rlpt.logprobs import completion_logprobs
from rlpt.losses import preference as pref_losses
from rlpt.models.config import ModelConfig
from rlpt.optim import apply_update
from rlpt.preference.pairs import best_worst_pairs, should_sync, take_samples
from rlpt.preference.reward_model import score as rm_score
from rlpt.sampling import SamplingConfig, sample
from rlpt.state import TrainState, frozen_copy, new_state

OFFLINE = ("dpo", "ipo", "cdpo", "rdpo", "simpo", "pre_dpo")
ALGOS = OFFLINE + ("online_dpo", "drpo")
G_KINDS = ("task_reward", "reward_model")


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


def task_preference(r_a, r_b):
    """g from task rewards: `clip(0.5 + 0.5 (R_a - R_b), 0, 1)`."""
    return jnp.clip(0.5 + 0.5 * (r_a - r_b), 0.0, 1.0)


class PreferenceStep:
    """Builds the step from `algo` (a ConfigDict with `name` in ALGOS plus loss knobs).

    `sampling` (a ConfigDict like base_config().sampling) and `reward_fn` (a task reward,
    `fn(tokens, mask, target, target_len) -> (r, aux)`) are needed by online_dpo and drpo;
    `rm_model_cfg` by drpo with `algo.g = "reward_model"`.
    """

    def __init__(self, model_cfg: ModelConfig, algo, optimizer, sampling=None, reward_fn=None,
                 rm_model_cfg: Optional[ModelConfig] = None):
        if algo.name not in ALGOS:
            raise ValueError(f"unknown preference algo {algo.name!r}; known: {ALGOS}")
        self.model_cfg, self.algo, self.optimizer = model_cfg, algo, optimizer
        self.name = algo.name
        self.loss_name = algo.get("loss", "dpo") if self.name == "online_dpo" else self.name
        self.loss_fn = registry.get("loss", self.loss_name)
        self.need_ref = self.loss_name != "simpo"
        self.reward_fn, self.rm_model_cfg = reward_fn, rm_model_cfg
        if self.name in ("online_dpo", "drpo"):
            if sampling is None or (reward_fn is None and self.name == "online_dpo"):
                raise ValueError(f"{self.name} needs a sampling config and a task reward_fn")
            n = algo.num_samples if self.name == "online_dpo" else algo.num_online
            self.scfg = SamplingConfig(
                max_new_tokens=sampling.max_new_tokens, num_samples=int(n),
                temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                stop_tokens=tuple(sampling.stop_tokens), pad_id=sampling.pad_id,
                loop=sampling.loop)
        if self.name == "online_dpo":
            should_sync(0, algo.sync_every)  # validates s
        if self.name == "drpo":
            if algo.g not in G_KINDS:
                raise ValueError(f"drpo algo.g={algo.g!r}; known: {G_KINDS}")
            if algo.g == "task_reward" and reward_fn is None:
                raise ValueError("drpo with g='task_reward' needs the task reward_fn")
            if algo.g == "reward_model" and rm_model_cfg is None:
                raise ValueError("drpo with g='reward_model' needs rm_model_cfg")

    # -- preparation (no gradient): reference log-probs, online samples, pairs ---------------
    def _ref(self, frozen, data, keys=("ref_w", "ref_l")):
        if self.need_ref:
            ref = jax.lax.stop_gradient(pair_logprobs(self.model_cfg, frozen["reference"], data))
            data[keys[0]], data[keys[1]] = ref
        return data

    def _pairwise_data(self, frozen, batch):
        data = {k: batch[k] for k in ("prompt", "prompt_mask", "chosen", "chosen_mask",
                                      "rejected", "rejected_mask")}
        data["len_w"] = batch["chosen_mask"].sum(axis=1).astype(jnp.float32)
        data["len_l"] = batch["rejected_mask"].sum(axis=1).astype(jnp.float32)
        if "mask" in batch:
            data["mask"] = batch["mask"].astype(jnp.float32)
        keys = ("guide_w", "guide_l") if self.loss_name == "pre_dpo" else ("ref_w", "ref_l")
        return self._ref(frozen, data, keys)

    def _online_data(self, state, batch, key):
        s = self.algo.sync_every
        gen = state.frozen["generator"]
        if s is not None:
            sync = should_sync(state.step, s)
            gen = jax.tree_util.tree_map(lambda p, g: jnp.where(sync, p, g), state.params, gen)
        n = self.scfg.num_samples
        out = sample(self.model_cfg, jax.lax.stop_gradient(gen), batch["prompt"],
                     batch["prompt_mask"], jax.random.fold_in(key, 0), self.scfg)
        rep = lambda x: jnp.repeat(x, n, axis=0)
        r, _ = self.reward_fn(out.tokens, out.mask, rep(batch["target"]), rep(batch["target_len"]))
        b = batch["prompt"].shape[0]
        rewards = r.astype(jnp.float32).reshape(b, n)
        chosen, rejected, valid = best_worst_pairs(rewards, key=jax.random.fold_in(key, 1))
        group = lambda x: x.reshape(b, n, -1)
        mask_i = out.mask.astype(jnp.int32)
        pairs = {"prompt": batch["prompt"], "prompt_mask": batch["prompt_mask"],
                 "chosen": take_samples(group(out.tokens), chosen),
                 "chosen_mask": take_samples(group(mask_i), chosen),
                 "rejected": take_samples(group(out.tokens), rejected),
                 "rejected_mask": take_samples(group(mask_i), rejected),
                 "mask": valid.astype(jnp.float32)}
        metrics = {"sample_reward": rewards.mean(), "contrast_frac": pairs["mask"].mean(),
                   "sample_len": out.lengths.astype(jnp.float32).mean()}
        if s is not None:
            metrics["synced"] = jnp.asarray(sync, jnp.float32)
        return self._pairwise_data(state.frozen, pairs), metrics, gen

    def _g(self, state, batch, y, y_mask, y2, y2_mask, r_y=None, r_y2=None):
        """Preference model g(x, y, y2) for rows of y (prompt rows repeated to match)."""
        if self.algo.g == "task_reward":
            return task_preference(r_y, r_y2)
        rep = y.shape[0] // batch["prompt"].shape[0]
        p, pm = (jnp.repeat(batch[k], rep, axis=0) for k in ("prompt", "prompt_mask"))
        s = lambda t, m: rm_score(self.rm_model_cfg, state.frozen["reward_model"], p, pm, t, m)
        return jax.nn.sigmoid(s(y, y_mask) - s(y2, y2_mask))

    def _drpo_data(self, state, batch, key):
        b, m = batch["prompt"].shape[0], self.scfg.num_samples
        swap = jax.random.bernoulli(jax.random.fold_in(key, 2), 0.5, (b,))
        pick = lambda a, c: jnp.where(swap[:, None], c, a)
        y1, y1m = pick(batch["chosen"], batch["rejected"]), pick(batch["chosen_mask"],
                                                                   batch["rejected_mask"])
        y2, y2m = pick(batch["rejected"], batch["chosen"]), pick(batch["rejected_mask"],
                                                                   batch["chosen_mask"])
        out = sample(self.model_cfg, jax.lax.stop_gradient(state.params), batch["prompt"],
                     batch["prompt_mask"], jax.random.fold_in(key, 0), self.scfg)
        rep = lambda x: jnp.repeat(x, m, axis=0)
        online, online_mask = out.tokens, out.mask.astype(jnp.int32)
        r_y = r_y2 = r_1 = r_2 = None
        if self.algo.g == "task_reward":
            tgt, tl = batch["target"], batch["target_len"]
            r_y = self.reward_fn(online, online_mask, rep(tgt), rep(tl))[0]
            r_1, r_2 = (self.reward_fn(t, mk, tgt, tl)[0] for t, mk in ((y1, y1m), (y2, y2m)))
            r_y2 = rep(r_2)
        g_online = self._g(state, batch, online, online_mask, rep(y2), rep(y2m), r_y, r_y2)
        g_y1 = self._g(state, batch, y1, y1m, y2, y2m, r_1, r_2)
        ref = state.frozen["reference"]
        ref_y1, _ = sequence_logprobs(self.model_cfg, ref, batch["prompt"], batch["prompt_mask"],
                                      y1, y1m)
        _, ref_tok = sequence_logprobs(self.model_cfg, ref, rep(batch["prompt"]),
                                       rep(batch["prompt_mask"]), online, online_mask)
        data = {"prompt": batch["prompt"], "prompt_mask": batch["prompt_mask"], "y1": y1,
                "y1_mask": y1m, "online": online, "online_mask": online_mask,
                "Z": 1.0 - swap.astype(jnp.float32), "g_y1": g_y1,
                "g_online": g_online.reshape(b, m),
                "ref_y1": ref_y1, "ref_online_tok": ref_tok.reshape(b, m, -1)}
        data = jax.tree_util.tree_map(jax.lax.stop_gradient, data)
        metrics = {"online_len": out.lengths.astype(jnp.float32).mean()}
        if r_y is not None:
            metrics["online_reward"] = r_y.mean()
        return data, metrics

    def prepare(self, state: TrainState, batch, key):
        """Everything outside the gradient: returns (loss inputs, metrics, new generator params
        (online DPO; None otherwise))."""
        if self.name == "online_dpo":
            return self._online_data(state, batch, key)
        if self.name == "drpo":
            data, metrics = self._drpo_data(state, batch, key)
            return data, metrics, None
        return self._pairwise_data(state.frozen, batch), {}, None

    # -- loss --------------------------------------------------------------------------------
    def loss(self, params, data):
        """(loss, metrics) of the registered loss at `params` given prepared `data`."""
        if self.name == "drpo":
            return self._drpo_loss(params, data)
        logp_w, logp_l = pair_logprobs(self.model_cfg, params, data)
        lb = {k: v for k, v in data.items() if k in (
            "ref_w", "ref_l", "guide_w", "guide_l", "len_w", "len_l", "mask")}
        loss, metrics = self.loss_fn(dict(lb, logp_w=logp_w, logp_l=logp_l), self.algo)
        metrics["pair_frac"] = jnp.mean(data["mask"]) if "mask" in data else jnp.float32(1.0)
        return loss, metrics

    def _drpo_loss(self, params, data):
        b, m = data["g_online"].shape
        rep = lambda x: jnp.repeat(x, m, axis=0)
        logp_y1, _ = sequence_logprobs(self.model_cfg, params, data["prompt"],
                                       data["prompt_mask"], data["y1"], data["y1_mask"])
        _, tok = sequence_logprobs(self.model_cfg, params, rep(data["prompt"]),
                                   rep(data["prompt_mask"]), data["online"], data["online_mask"])
        lb = {"logp_y1": logp_y1, "ref_y1": data["ref_y1"], "Z": data["Z"], "g_y1": data["g_y1"],
              "g_online": data["g_online"], "logp_online_tok": tok.reshape(b, m, -1),
              "ref_online_tok": data["ref_online_tok"],
              "mask_online": data["online_mask"].reshape(b, m, -1)}
        loss, metrics = self.loss_fn(lb, self.algo)
        metrics["pair_frac"] = jnp.float32(1.0)
        return loss, metrics

    # -- the step ----------------------------------------------------------------------------
    def __call__(self, state: TrainState, batch, hp) -> (TrainState, Dict):
        """One update; `hp = {"optim": ...}` the dynamic hyperparameters (rlpt.optim)."""
        key = jax.random.fold_in(state.rng, state.step)
        data, metrics, gen = self.prepare(state, batch, key)
        (loss, m), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, data)
        params, opt_state, guard = apply_update(self.optimizer, loss, grads, state.opt_state,
                                                state.params, hp["optim"])
        metrics.update(m, loss=loss, **guard)
        frozen = state.frozen if gen is None else dict(state.frozen, generator=gen)
        new = state.replace(params=params, opt_state=opt_state, frozen=frozen,
                            step=state.step + 1)
        return new, metrics

    def eval_metrics(self, params, ref_params, batch):
        """Held-out pair metrics at `params` (no update): the registered offline loss on `batch`,
        or DPO's (default beta) for online_dpo / drpo; `accuracy` = fraction with margin > 0."""
        if self.name in OFFLINE:
            return self.loss(params, self._pairwise_data({"reference": ref_params}, batch))[1]
        data = {k: batch[k] for k in ("prompt", "prompt_mask", "chosen", "chosen_mask",
                                      "rejected", "rejected_mask")}
        data["ref_w"], data["ref_l"] = pair_logprobs(self.model_cfg, ref_params, data)
        data["logp_w"], data["logp_l"] = pair_logprobs(self.model_cfg, params, data)
        return pref_losses.dpo_loss(data, None)[1]


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

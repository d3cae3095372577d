"""The fused RL step: sample -> reward -> advantages -> loss -> optax update, one XLA program.

    state, metrics = rl_step(state, batch)

`state` (TrainState) holds the policy params, optimizer state, reference params, the step and
the base rng; the iteration's rng is `fold_in(rng, step)`, so a resumed run draws exactly what an
uninterrupted one would. `batch` holds the prompts (`prompt [B, P]`, `prompt_mask [B, P]`) and
what the reward reads (`target [B, A]`, `target_len [B]`). Inside, in order:

1. `sample`: G completions per prompt with the on-device sampler (rlpt.sampling).
2. reward: an on-device reward function of tokens (the default), or a host function over decoded
   strings through `jax.pure_callback` (the documented host boundary, `host_reward_callback`).
   The same code split in two jitted halves (`rollout` and `update`, with any Python in between)
   is the other documented boundary (`make_split_step`).
3. advantages by name from the registry (`cfg.algo.advantage`).
4. reference log-probs (teacher-forced, from logits / temperature) when the loss needs them.
5. `ppo_epochs x minibatches` optimizer updates in a `lax.scan` over group-preserving random
   minibatches; with one epoch and one minibatch, old_logp := stop_gradient(logp) so ratio == 1
   exactly, otherwise old_logp is recomputed once with the pre-update params.
6. metrics, on device.

`make_multi_step` runs K iterations per call with `lax.scan` over a stacked batch [K, B, ...].

Algorithm extras (selected by `cfg.algo`, all inside the same program; rlpt/algorithms/*):

- reward shaping before advantages (`algo.shaping`: DAPO +-1 and overlong, Kimi length,
  unlikeliness) and DAPO dynamic sampling (`algo.dynamic_sampling`: keep mask; `algo.oversample`:
  sample k*B prompts, keep B groups, non-degenerate first);
- PPO: a value head on the final hidden state (`TrainState.value_params`), GAE returns, clipped
  value loss;
- KDRL: teacher log-probs from a frozen second model (`TrainState.teacher_params`);
- ExP-GRPO: self-explanations sampled from an answer-conditioned prompt, scored without it;
- MGRPO: layer-2 self-correction prompts, G samples each, their own rewards and advantages;
- UFT: hint prompts (`RLStep.prepare`, before the rollout) and an NLL term over the hint tokens;
- ReLIFT: a buffer of all-failed prompts in `TrainState.algo_state` and an SFT update under
  `lax.cond` when it is full;
- `sft` / `relift_sft`: the supervised loss on the gold solutions (or, `sft_source=
  "correct_samples"`, on the step's correct samples) inside the same loop;
- with any loss: `algo.entropy_coef` (entropy bonus) and `algo.sft_term_coef` (adds
  `coef * NLL(gold solution | prompt)`, temperature 1).
"""
import dataclasses
import functools
from typing import Any, Callable, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlpt import registry
from rlpt.algorithms import common, expo, mgrpo, ppo, relift, shaping, uft
from rlpt.losses.aggregation import masked_mean
from rlpt.losses.policy import uft_hint_prob
from rlpt.losses.supervised import sft_nll
from rlpt.models.config import ModelConfig
from rlpt.models.transformer import Transformer, forward, positions_from_mask, token_logprobs
from rlpt.sampling import SampleOutput, SamplingConfig, completion_inputs, prefill, sample


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    ref_params: Any   # frozen reference policy (None when no loss term needs it)
    step: jax.Array   # int32 scalar: iterations done
    rng: jax.Array    # base PRNG key; iteration rng = fold_in(rng, step)
    value_params: Any = None    # PPO value head (optimised jointly with params)
    teacher_params: Any = None  # KDRL frozen teacher
    algo_state: Any = None      # carried algorithm state (ReLIFT buffer)


def lr_schedule(opt):
    """Linear warm-up reaching `lr` after `warmup_steps` updates (the first update already uses
    lr / warmup_steps), then constant or cosine decay to `lr * final_lr_fraction`."""
    warm = max(int(opt.warmup_steps), 1)
    if opt.schedule == "constant":
        decay = lambda t: 1.0
    elif opt.schedule == "cosine":
        span = max(int(opt.decay_steps) - warm, 1)
        decay = lambda t: opt.final_lr_fraction + (1 - opt.final_lr_fraction) * 0.5 * (
            1 + jnp.cos(jnp.pi * jnp.clip((t - warm) / span, 0.0, 1.0)))
    else:
        raise ValueError(f"optim.schedule={opt.schedule!r}; expected 'constant' or 'cosine'")
    return lambda t: opt.lr * jnp.minimum(1.0, (t + 1.0) / warm) * decay(t)


def make_optimizer(opt) -> optax.GradientTransformation:
    """AdamW with the warm-up schedule above and global-norm clipping."""
    chain = [optax.clip_by_global_norm(opt.max_grad_norm)] if opt.max_grad_norm else []
    chain.append(optax.adamw(lr_schedule(opt), b1=opt.b1, b2=opt.b2, eps=opt.eps,
                             weight_decay=opt.weight_decay))
    return optax.chain(*chain)


def init_state(params, optimizer, seed: int, with_ref: bool) -> TrainState:
    return TrainState(params=params, opt_state=optimizer.init(params),
                      ref_params=jax.tree_util.tree_map(jnp.copy, params) if with_ref else None,
                      step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(seed))


def shared_prompt_logits(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                         group_size: int):
    """The logits [N, T, V] that predict the completion tokens, computing each prompt ONCE per
    group: rows i*G .. i*G+G-1 must share their prompt (as the G samples of a prompt do).

    Same math as `forward(...)[:, P-1:-1]`: the prompts are prefilled (the sampler's prefill,
    `group_size` times fewer prompt rows), then all T completion tokens run in one pass against
    the repeated prompt K/V with the same positions and causal mask; gradients reach the prompt
    activations through the repeat (a sum over the group).
    """
    P, G = prompt_width, group_size
    T = tokens_NL.shape[1] - P
    model = Transformer(model_cfg)
    apply_fn = lambda p, *a: model.apply({"params": p}, *a)
    last_NV, cache, _, key_valid_NP = prefill(model_cfg, apply_fn, params, tokens_NL[::G, :P],
                                              valid_NL[::G, :P], G, T)
    key_valid_NL = jnp.concatenate([key_valid_NP, valid_NL[:, P:].astype(bool)], axis=1)
    causal_TL = jnp.concatenate([jnp.ones((T, P), bool), jnp.tril(jnp.ones((T, T), bool))], 1)
    positions = positions_from_mask(valid_NL)[:, P:]
    logits_NTV, _ = apply_fn(params, tokens_NL[:, P:], positions,
                             causal_TL[None] & key_valid_NL[:, None, :], cache, P)
    return jnp.concatenate([last_NV[:, None], logits_NTV[:, :-1]], axis=1)


def completion_logprobs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                        temperature: float, with_entropy: bool = False, group_size: int = 1):
    """Teacher-forced log-probs (and entropies) of completion tokens, from logits / temperature.

    tokens_NL = [prompt (width P, left-padded) | completion (T)]; logits at columns P-1 .. L-2
    predict the completion tokens. With `group_size` G > 1 the rows come in groups of G sharing
    a prompt, and each prompt is computed once (`shared_prompt_logits`).
    """
    if group_size > 1:
        logits = shared_prompt_logits(model_cfg, params, tokens_NL, valid_NL, prompt_width,
                                      group_size)
    else:
        logits = forward(model_cfg, params, tokens_NL, valid_NL)[:, prompt_width - 1:-1]
    logp = token_logprobs(logits, tokens_NL[:, prompt_width:], temperature)
    if not with_entropy:
        return logp, None
    lp_all = jax.nn.log_softmax(logits / temperature, axis=-1)
    return logp, -jnp.sum(jnp.exp(lp_all) * lp_all, axis=-1)


def sequence_outputs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                     temperature: float, with_entropy=False, with_hidden=False, with_prompt=False):
    """`completion_logprobs` plus what PPO and UFT need from the same forward pass.

    Returns a dict: `logp` [N, T], `entropy` [N, T] (or None), `hidden` [N, T, D] (final hidden
    state at the columns predicting the completion, or None), `prompt_logp` [N, P-1] (log-prob
    of prompt token j+1 given the columns up to j, or None).
    """
    if with_hidden:
        logits, hidden = forward(model_cfg, params, tokens_NL, valid_NL, return_hidden=True)
        hidden = hidden[:, prompt_width - 1:-1]
    else:
        logits, hidden = forward(model_cfg, params, tokens_NL, valid_NL), None
    out = {"hidden": hidden, "entropy": None, "prompt_logp": None}
    if with_prompt:
        lp = token_logprobs(logits[:, :-1], tokens_NL[:, 1:], temperature)
        out["logp"], out["prompt_logp"] = lp[:, prompt_width - 1:], lp[:, :prompt_width - 1]
    else:
        out["logp"] = token_logprobs(logits[:, prompt_width - 1:-1], tokens_NL[:, prompt_width:],
                                     temperature)
    if with_entropy:
        lp_all = jax.nn.log_softmax(logits[:, prompt_width - 1:-1] / temperature, axis=-1)
        out["entropy"] = -jnp.sum(jnp.exp(lp_all) * lp_all, axis=-1)
    return out


def host_reward_callback(host_fn: Callable[..., np.ndarray]):
    """Wraps a host (numpy / Python) reward so it can run inside the jitted step.

    `host_fn(tokens [N,T], mask [N,T], target [N,A], target_len [N]) -> rewards [N]` receives
    numpy arrays (it may decode them to strings and call any Python verifier). The device waits
    for the host at this point; scripts/bench.py measures what the boundary costs.
    """
    def reward(tokens, mask, target, target_len):
        shape = jax.ShapeDtypeStruct((tokens.shape[0],), jnp.float32)
        fn = lambda *a: np.asarray(host_fn(*[np.asarray(x) for x in a]), np.float32)
        r = jax.pure_callback(fn, shape, tokens, mask, target, target_len)
        return r, {}
    return reward


def _group_stats(rewards_N, G):
    r = rewards_N.reshape(-1, G)
    return jnp.mean(jnp.all(r == r[:, :1], axis=1).astype(jnp.float32))


SUPERVISED = ("sft", "relift_sft")


class RLStep:
    """Builds the pieces of the step from config. All methods are pure functions of arrays.

    `teacher_cfg`: the KDRL teacher's ModelConfig (default: the student's). `per_prompt_metrics`:
    `fused` also returns `accuracy_per_prompt [B]` (1-shot example ranking; off in the trainer,
    whose logger expects scalars).
    """

    def __init__(self, model_cfg: ModelConfig, cfg, optimizer, reward_fn,
                 teacher_cfg: Optional[ModelConfig] = None, per_prompt_metrics: bool = False):
        self.model_cfg, self.cfg, self.optimizer, self.reward_fn = model_cfg, cfg, optimizer, reward_fn
        s = cfg.sampling
        self.scfg = SamplingConfig(
            max_new_tokens=s.max_new_tokens, num_samples=s.num_samples, temperature=s.temperature,
            top_k=s.top_k, top_p=s.top_p, greedy=False, stop_tokens=tuple(s.stop_tokens),
            min_new_tokens=s.min_new_tokens, pad_id=s.pad_id, loop=s.loop)
        self.algo = a = cfg.algo
        self.loss_fn = registry.get("loss", cfg.algo.name)
        self.adv_fn = registry.get("advantage", cfg.algo.advantage)
        self.tau = s.temperature
        name = a.name
        self.value_head = name == "ppo"
        self.need_ref = float(cfg.algo.get("beta", 0.0)) > 0 or (
            self.value_head and float(a.get("kl_coef", 0.0)) > 0)
        self.multi_update = cfg.rl.ppo_epochs * cfg.rl.minibatches > 1
        self.with_entropy = float(a.get("entropy_coef", 0.0)) > 0
        self.shaping = tuple(a.get("shaping", ()))
        self.dynamic_sampling = bool(a.get("dynamic_sampling", False))
        self.oversample = int(a.get("oversample", 1))
        self.batch_size = int(cfg.rl.batch_size)
        self.prompts_per_step = self.batch_size * self.oversample  # task batch size per step
        self.teacher_cfg = (teacher_cfg or model_cfg) if name == "kdrl" else None
        self.expo, self.mgrpo = name == "exp_grpo", name == "mgrpo"
        self.uft, self.relift = name == "uft", name == "relift"
        self.supervised = name in SUPERVISED
        self.sft_source = a.get("sft_source", "gold")
        self.sft_term_coef = float(a.get("sft_term_coef", 0.0))
        self.stop_tokens = tuple(s.stop_tokens)
        self.per_prompt_metrics = per_prompt_metrics
        if self.expo:
            self.expo_scfg = dataclasses.replace(
                self.scfg, num_samples=int(a.get("expl_samples", 1)),
                max_new_tokens=int(a.get("expl_max_tokens", s.max_new_tokens)))

    # -- state ---------------------------------------------------------------------------
    def init_state(self, params, seed: int, teacher_params=None, example_batch=None) -> TrainState:
        """The initial TrainState of this algorithm: the reference copy when a loss term needs it,
        the value head (PPO), the teacher (KDRL; default a frozen copy of `params`), the ReLIFT
        buffer (shaped after `example_batch`, one step's task batch)."""
        state = init_state(params, self.optimizer, seed, with_ref=self.need_ref)
        if self.value_head:
            rng = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
            state = state.replace(value_params=ppo.init_value_head(self.model_cfg.d_model, rng))
            state = state.replace(opt_state=self.optimizer.init(self.trainable(state)))
        if self.teacher_cfg is not None:
            if teacher_params is None:
                if self.teacher_cfg != self.model_cfg:
                    raise ValueError("KDRL: a teacher ModelConfig was given without teacher_params")
                teacher_params = jax.tree_util.tree_map(jnp.copy, params)
            state = state.replace(teacher_params=teacher_params)
        if self.relift:
            if example_batch is None:
                raise ValueError("ReLIFT: init_state needs example_batch to shape its buffer")
            size = int(self.algo.get("sft_buffer_size", 128))
            state = state.replace(algo_state={"relift": relift.init_buffer(size, example_batch)})
        return state

    def trainable(self, state: TrainState):
        """What the optimizer updates: the policy params (and the PPO value head)."""
        return (state.params, state.value_params) if self.value_head else state.params

    # -- pieces --------------------------------------------------------------------------
    def prepare(self, state: TrainState, batch):
        """Batch-side extras before the rollout: UFT hint prompts; the identity otherwise."""
        if not self.uft:
            return batch
        key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 3)
        return uft.hint_batch(key, state.step, batch, self.algo, self.stop_tokens,
                              self.scfg.pad_id)

    def rollout(self, state: TrainState, batch) -> SampleOutput:
        key = jax.random.fold_in(state.rng, state.step)
        return sample(self.model_cfg, state.params, batch["prompt"], batch["prompt_mask"],
                      jax.random.fold_in(key, 0), self.scfg)

    def reward_inputs(self, batch, out: SampleOutput):
        """The (tokens, mask) the task reward reads: the completion (UFT: hint + completion)."""
        if self.uft and self.algo.get("hint_in_reward", True):
            return uft.hinted_completions(batch, out.tokens, out.mask, self.scfg.num_samples,
                                          self.scfg.pad_id)
        return out.tokens, out.mask

    def teacher_inputs(self, batch, out: SampleOutput):
        """Teacher-forcing rows `(tokens [N, P+T], valid)` of prompts + completions. A subclass
        whose rollout puts non-model tokens in the completion (tool output: valid for attention,
        outside the loss mask) overrides this one method."""
        return completion_inputs(batch["prompt"], batch["prompt_mask"], out, self.scfg.num_samples)

    def reward(self, batch, out: SampleOutput):
        G = self.scfg.num_samples
        rep = lambda x: jnp.repeat(x, G, axis=0)
        tokens, mask = self.reward_inputs(batch, out)
        r, aux = self.reward_fn(tokens, mask, rep(batch["target"]), rep(batch["target_len"]))
        return r.astype(jnp.float32), aux

    def update(self, state: TrainState, batch, out: SampleOutput, rewards_N) -> Tuple[TrainState, Dict]:
        cfg, G, a = self.cfg, self.scfg.num_samples, self.algo
        key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 1)
        xkey = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 2)  # extra samples
        step_metrics = {}
        raw_N = rewards_N
        if self.shaping:
            rewards_N = shaping.shape_rewards(self.shaping, raw_N, out, a, G)
            step_metrics["task_reward_mean"] = raw_N.mean()
        if self.oversample > 1:
            batch, out, raw_N, rewards_N, m = shaping.select_groups(
                batch, out, raw_N, rewards_N, a, G, self.batch_size)
            step_metrics.update(m)
        P = batch["prompt"].shape[1]
        tokens, valid = self.teacher_inputs(batch, out)
        mask = out.mask
        # Rows come in groups of G samples of one prompt: each prompt is computed once.
        logp_of = functools.partial(completion_logprobs, self.model_cfg, prompt_width=P,
                                    temperature=self.tau, group_size=G)
        data = {"tokens": tokens, "valid": valid, "mask": mask, "rewards": rewards_N}
        per_prompt = {}   # arrays with the prompt on axis 0 (minibatched by group)
        if self.need_ref:
            data["ref_logp"] = jax.lax.stop_gradient(logp_of(state.ref_params, tokens, valid)[0])
        extras = dict(lengths=out.lengths, entropy=out.entropies, old_logp=out.logprobs,
                      correct=rewards_N)
        if self.value_head:
            hidden = sequence_outputs(self.model_cfg, state.params, tokens, valid, P, self.tau,
                                      with_hidden=True)["hidden"]
            old_values = jax.lax.stop_gradient(ppo.value_apply(state.value_params, hidden))
            extras.update(values=old_values, ref_logp=data.get("ref_logp"))
            data["old_values"] = old_values
            data["returns"] = jax.lax.stop_gradient(ppo.gae_returns(
                rewards_N, old_values, mask, a, out.logprobs, data.get("ref_logp")))
            step_metrics["value_mean"] = masked_mean(old_values, mask)
        adv = self.adv_fn(rewards_N, mask, self.algo, **extras)
        if adv.ndim == 1:
            adv = adv[:, None] * mask
        data["advantages"] = adv
        if self.dynamic_sampling:
            data["keep"], n_kept = shaping.keep_mask(raw_N, rewards_N, a, G)
            step_metrics["effective_groups"] = n_kept.astype(jnp.float32)
        if self.multi_update:
            data["old_logp"] = jax.lax.stop_gradient(logp_of(state.params, tokens, valid)[0])
        if self.teacher_cfg is not None:
            data["teacher_logp"] = jax.lax.stop_gradient(completion_logprobs(
                self.teacher_cfg, state.teacher_params, tokens, valid, P, self.tau,
                group_size=G)[0])
        if self.uft:
            data["hint_pos"] = jnp.repeat(batch["hint_pos"], G, axis=0)
            step_metrics.update(
                hint_prob=uft_hint_prob(state.step, float(a.get("hint_p_low", 0.05)),
                                        float(a.get("hint_p_high", 0.95)),
                                        int(a.get("hint_steps", 300))),
                hint_tokens=jnp.sum(batch["hint_mask"], axis=1).astype(jnp.float32).mean())
        if self.expo:
            d, m = self._explanations(state, batch, xkey)
            per_prompt.update(d)
            step_metrics.update(m)
        if self.mgrpo:
            d, m = self._layer2(state, batch, out, xkey)
            per_prompt.update(d)
            step_metrics.update(m)
        if self.supervised or self.sft_term_coef:
            per_prompt.update(
                sol_tokens=jnp.concatenate([batch["prompt"], batch["solution"]], axis=1),
                sol_valid=jnp.concatenate([batch["prompt_mask"], batch["solution_mask"]],
                                          axis=1).astype(bool),
                sol_mask=batch["solution_mask"].astype(jnp.float32))
        if self.supervised and self.sft_source == "correct_samples":
            data["sft_row_mask"] = mask * shaping.correct_of(raw_N, a)[:, None]

        B = batch["prompt"].shape[0]
        E, M = cfg.rl.ppo_epochs, cfg.rl.minibatches
        perms = jnp.stack([jax.random.permutation(jax.random.fold_in(key, e), B) for e in range(E)])
        groups = perms.reshape(E * M, B // M)                     # group-preserving minibatches
        rows = (groups[:, :, None] * G + jnp.arange(G)).reshape(E * M, -1)
        loss_of = functools.partial(self._loss, step=state.step, prompt_width=P)

        def one_update(carry, idx):
            train, opt_state = carry
            mb = jax.tree_util.tree_map(lambda x: x[idx[0]], data)
            mbp = jax.tree_util.tree_map(lambda x: x[idx[1]], per_prompt)
            (loss, m), grads = jax.value_and_grad(loss_of, has_aux=True)(train, mb, mbp)
            updates, opt_state = self.optimizer.update(grads, opt_state, train)
            m = dict(m, loss=loss, grad_norm=optax.tree.norm(grads))
            return (optax.apply_updates(train, updates), opt_state), m

        (train, opt_state), ms = jax.lax.scan(
            one_update, (self.trainable(state), state.opt_state), (rows, groups))
        params, value_params = train if self.value_head else (train, state.value_params)
        metrics = {k: v.mean() for k, v in ms.items()}
        algo_state = state.algo_state
        if self.relift:
            params, opt_state, algo_state, m = self._relift(params, opt_state, algo_state, batch,
                                                            raw_N)
            metrics.update(m)
        lengths = out.lengths.astype(jnp.float32)
        metrics.update(
            reward_mean=rewards_N.mean(), reward_std=rewards_N.std(),
            entropy_sampled=(out.entropies * mask).sum() / jnp.maximum(mask.sum(), 1),
            response_len=lengths.mean(), response_len_max=lengths.max(),
            stopped_frac=out.stopped.astype(jnp.float32).mean(),
            zero_adv_group_frac=_group_stats(rewards_N, G),
        )
        metrics.update(step_metrics)
        new = state.replace(params=params, opt_state=opt_state, step=state.step + 1,
                            value_params=value_params, algo_state=algo_state)
        return new, metrics

    # -- the loss on one minibatch ----------------------------------------------------------
    def _loss(self, train, mb, mbp, step, prompt_width):
        """The registered loss on minibatch rows `mb` and per-prompt arrays `mbp`, plus the
        optional SFT term. Returns (loss, metrics)."""
        params, value_params = train if self.value_head else (train, None)
        lb = {"step": step}
        if self.supervised:
            lb.update(self._supervised_batch(params, mb, mbp, prompt_width))
        else:
            if self.value_head or self.uft:
                o = sequence_outputs(self.model_cfg, params, mb["tokens"], mb["valid"],
                                     prompt_width, self.tau, with_entropy=self.with_entropy,
                                     with_hidden=self.value_head, with_prompt=self.uft)
                logp, ent = o["logp"], o["entropy"]
            else:
                # minibatches hold whole groups (see `update`), so prompts are shared by G rows
                logp, ent = completion_logprobs(self.model_cfg, params, mb["tokens"], mb["valid"],
                                                prompt_width, self.tau,
                                                with_entropy=self.with_entropy,
                                                group_size=self.scfg.num_samples)
            lb.update(logp=logp, mask=mb["mask"], advantages=mb["advantages"],
                      rewards=mb["rewards"],
                      old_logp=mb["old_logp"] if self.multi_update
                      else jax.lax.stop_gradient(logp))
            for k in ("ref_logp", "teacher_logp", "keep"):
                if k in mb:
                    lb[k] = mb[k]
            if self.with_entropy:
                lb["entropy"] = ent
            if self.value_head:
                h = o["hidden"]
                if not self.algo.get("value_trunk_grad", True):
                    h = jax.lax.stop_gradient(h)
                lb.update(values=ppo.value_apply(value_params, h), old_values=mb["old_values"],
                          returns=mb["returns"])
            if self.uft:
                lb.update(sft_logp=o["prompt_logp"], sft_mask=mb["hint_pos"][:, 1:])
            if self.expo:
                ex = _flatten_prefixed(mbp, "expl_")
                lb.update(sft_logp=self._logp(params, ex, self.tau)[0], sft_mask=ex["mask"])
            if self.mgrpo:
                l2 = _flatten_prefixed(mbp, "l2_")
                lp2, ent2 = self._logp(params, l2, self.tau, self.with_entropy)
                lb.update(layer2_logp=lp2, layer2_mask=l2["mask"],
                          layer2_advantages=l2["advantages"],
                          layer2_old_logp=l2["old_logp"] if self.multi_update
                          else jax.lax.stop_gradient(lp2))
                if "ref_logp" in l2:
                    lb["layer2_ref_logp"] = l2["ref_logp"]
                if self.with_entropy:
                    lb["layer2_entropy"] = ent2
        loss, metrics = self.loss_fn(lb, self.algo)
        if self.sft_term_coef:
            nll = sft_nll(self._gold_logp(params, mbp)[0], mbp["sol_mask"])
            loss = loss + self.sft_term_coef * nll
            metrics = dict(metrics, sft_term_nll=nll, loss=loss)
        return loss, metrics

    def _logp(self, params, rows, temperature, with_entropy=False):
        """Completion log-probs of `rows` (tokens, valid, mask [n, T]); prompt width = L - T."""
        width = rows["tokens"].shape[1] - rows["mask"].shape[1]
        return completion_logprobs(self.model_cfg, params, rows["tokens"], rows["valid"], width,
                                   temperature, with_entropy=with_entropy)

    def _gold_logp(self, params, mbp, with_entropy=False):
        """Log-probs (temperature 1) of the gold solution tokens given the prompt."""
        return self._logp(params, {"tokens": mbp["sol_tokens"], "valid": mbp["sol_valid"],
                                   "mask": mbp["sol_mask"]}, 1.0, with_entropy)

    def _supervised_batch(self, params, mb, mbp, prompt_width):
        """`sft` / `relift_sft`: the gold solutions, or the step's correct samples
        (`sft_source="correct_samples"`, rejection-sampling fine-tuning); temperature 1."""
        if self.sft_source == "gold":
            logp, ent = self._gold_logp(params, mbp, self.with_entropy)
            lb = {"logp": logp, "mask": mbp["sol_mask"]}
        else:
            logp, ent = completion_logprobs(self.model_cfg, params, mb["tokens"], mb["valid"],
                                            prompt_width, 1.0, with_entropy=self.with_entropy)
            lb = {"logp": logp, "mask": mb["sft_row_mask"]}
        if self.with_entropy:
            lb["entropy"] = ent
        return lb

    # -- algorithm extras -------------------------------------------------------------------
    def _explanations(self, state, batch, xkey):
        """ExP-GRPO: sample self-explanations from the answer-conditioned prompt (rlpt.algorithms.
        expo) and build the rows scored without the answer. Per-prompt arrays [B, E, ...]."""
        a, pad = self.algo, self.scfg.pad_id
        E, B = self.expo_scfg.num_samples, batch["prompt"].shape[0]
        prompt, pmask = expo.answer_conditioned_prompt(
            batch["prompt"], batch["prompt_mask"], batch["solution"], batch["solution_mask"],
            a.get("expl_prefix_ids", ()), a.get("expl_suffix_ids", ()), self.stop_tokens, pad)
        eo = sample(self.model_cfg, state.params, prompt, pmask, jax.random.fold_in(xkey, 1),
                    self.expo_scfg)
        tokens, valid, smask = expo.scored_explanations(
            batch["prompt"], batch["prompt_mask"], eo.tokens, eo.mask, batch["solution"],
            batch["solution_mask"], E, self.stop_tokens, pad)
        d = {"expl_tokens": tokens, "expl_valid": valid, "expl_mask": smask}
        expl_len = jnp.sum(eo.mask * common.not_stop(eo.tokens, self.stop_tokens), axis=1)
        return ({k: v.reshape((B, E) + v.shape[1:]) for k, v in d.items()},
                {"expl_len": expl_len.astype(jnp.float32).mean(),
                 "expl_sft_tokens": jnp.sum(smask, axis=1).mean()})

    def _layer2(self, state, batch, out, xkey):
        """MGRPO layer 2 (rlpt.algorithms.mgrpo): self-correction prompts, G samples each, task
        rewards, advantages. Per-prompt arrays [B, k*G, ...]."""
        a, G, B = self.algo, self.scfg.num_samples, batch["prompt"].shape[0]
        k = int(a.get("layer2_per_prompt", 1))
        prompt2, pmask2 = mgrpo.layer2_prompts(
            batch["prompt"], batch["prompt_mask"], out.tokens, out.mask, G, k,
            a.get("layer2_instruction_ids", ()), self.stop_tokens, self.scfg.pad_id)
        out2 = sample(self.model_cfg, state.params, prompt2, pmask2, jax.random.fold_in(xkey, 0),
                      self.scfg)
        rep = lambda x: jnp.repeat(x, k * G, axis=0)
        r2, _ = self.reward_fn(out2.tokens, out2.mask, rep(batch["target"]),
                               rep(batch["target_len"]))
        r2 = r2.astype(jnp.float32)
        adv2 = self.adv_fn(r2, out2.mask, a, lengths=out2.lengths, entropy=out2.entropies,
                           old_logp=out2.logprobs, correct=r2)
        if adv2.ndim == 1:
            adv2 = adv2[:, None] * out2.mask
        tokens2, valid2 = completion_inputs(prompt2, pmask2, out2, G)
        P2 = prompt2.shape[1]
        d = {"tokens": tokens2, "valid": valid2, "mask": out2.mask, "advantages": adv2}
        lp = lambda p: jax.lax.stop_gradient(
            completion_logprobs(self.model_cfg, p, tokens2, valid2, P2, self.tau)[0])
        if self.need_ref:
            d["ref_logp"] = lp(state.ref_params)
        if self.multi_update:
            d["old_logp"] = lp(state.params)
        per_prompt = {f"l2_{n}": v.reshape((B, k * G) + v.shape[1:]) for n, v in d.items()}
        return per_prompt, {"layer2_reward_mean": r2.mean(),
                            "layer2_accuracy": (r2 > 0.5).astype(jnp.float32).mean(),
                            "layer2_tokens": jnp.sum(out2.mask, axis=1).mean()}

    def _relift(self, params, opt_state, algo_state, batch, raw_N):
        """ReLIFT (rlpt.algorithms.relift): push all-failed prompts, SFT update when full."""
        G, size = self.scfg.num_samples, int(self.algo.get("sft_buffer_size", 128))
        failed_B = ~jnp.any(shaping.correct_of(raw_N, self.algo).reshape(-1, G), axis=1)
        buf = relift.push(algo_state["relift"], failed_B, batch)
        sft_cfg = {"entropy_coef": float(self.algo.get("sft_entropy_coef", 1e-3)),
                   "loss_agg": "token_mean"}
        sft_loss = registry.get("loss", "relift_sft")

        def do_sft(operand):
            params, opt_state, buf = operand
            b = relift.take(buf, size)
            rows = {"tokens": jnp.concatenate([b["prompt"], b["solution"]], axis=1),
                    "valid": jnp.concatenate([b["prompt_mask"], b["solution_mask"]],
                                             axis=1).astype(bool),
                    "mask": b["solution_mask"].astype(jnp.float32)}

            def loss_of(p):
                logp, ent = self._logp(p, rows, 1.0, with_entropy=True)
                return sft_loss({"logp": logp, "mask": rows["mask"], "entropy": ent}, sft_cfg)

            (loss, _), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, relift.pop(buf, size), loss

        def skip(operand):
            params, opt_state, buf = operand
            return params, opt_state, buf, jnp.zeros((), jnp.float32)

        applied = buf["count"] >= size
        params, opt_state, buf, loss = jax.lax.cond(applied, do_sft, skip,
                                                    (params, opt_state, buf))
        return params, opt_state, dict(algo_state, relift=buf), {
            "relift_failed_prompts": jnp.sum(failed_B).astype(jnp.float32),
            "relift_sft_applied": applied.astype(jnp.float32), "relift_sft_loss": loss,
            "relift_buffer_count": buf["count"].astype(jnp.float32)}

    # -- the fused program ------------------------------------------------------------------
    def fused(self, state: TrainState, batch):
        batch = self.prepare(state, batch)
        out = self.rollout(state, batch)
        rewards, aux = self.reward(batch, out)
        state, metrics = self.update(state, batch, out, rewards)
        metrics["accuracy"] = (rewards > 0.5).astype(jnp.float32).mean()
        if self.per_prompt_metrics:
            G = self.scfg.num_samples
            metrics["accuracy_per_prompt"] = (rewards > 0.5).astype(jnp.float32).reshape(
                -1, G).mean(axis=1)
        for k, v in aux.items():
            metrics[f"reward_{k}"] = jnp.asarray(v, jnp.float32).mean()
        return state, metrics


def _flatten_prefixed(d, prefix):
    """`{prefix + k: [b, e, ...]}` -> `{k: [b*e, ...]}`."""
    return {k[len(prefix):]: v.reshape((-1,) + v.shape[2:]) for k, v in d.items()
            if k.startswith(prefix)}

def make_fused_step(rl: RLStep, state_shardings=None, batch_shardings=None, donate=True):
    """The jitted fused step; with shardings, explicit in/out shardings over the mesh."""
    kw = {}
    if state_shardings is not None:
        kw = dict(in_shardings=(state_shardings, batch_shardings),
                  out_shardings=(state_shardings, None))
    return jax.jit(rl.fused, donate_argnums=(0,) if donate else (), **kw)


def make_multi_step(rl: RLStep, k: int, donate=True):
    """K fused iterations per call: `lax.scan` over a batch stacked to [K, B, ...]."""
    def multi(state, stacked):
        state, ms = jax.lax.scan(rl.fused, state, stacked)
        return state, ms  # metrics stacked [K]
    del k
    return jax.jit(multi, donate_argnums=(0,) if donate else ())


def make_split_step(rl: RLStep, host_reward: Callable[..., np.ndarray]):
    """The host boundary as two programs: rollout on device, reward in Python, update on device.

    Returns `step(state, batch) -> (state, metrics)`; `host_reward` takes numpy
    `(tokens [N,T], mask [N,T], target [N,A], target_len [N])` and returns rewards [N].
    """
    rollout = jax.jit(rl.rollout)
    update = jax.jit(rl.update, donate_argnums=(0,))
    prepare, reward_inputs = jax.jit(rl.prepare), jax.jit(rl.reward_inputs)
    G = rl.scfg.num_samples

    def step(state, batch):
        batch = prepare(state, batch)
        out = rollout(state, batch)
        tokens, mask = jax.device_get(reward_inputs(batch, out))
        rep = lambda x: np.repeat(np.asarray(x), G, axis=0)
        r = np.asarray(host_reward(tokens, mask, rep(batch["target"]),
                                   rep(batch["target_len"])), np.float32)
        state, metrics = update(state, batch, out, jnp.asarray(r))
        metrics["accuracy"] = jnp.mean(jnp.asarray(r) > 0.5)
        return state, metrics
    return step


def sft_loss_and_grads(model_cfg: ModelConfig, params, batch):
    """SFT on (prompt, solution): token-mean NLL of the solution tokens (registry `sft`)."""
    P = batch["prompt"].shape[1]
    tokens = jnp.concatenate([batch["prompt"], batch["solution"]], axis=1)
    valid = jnp.concatenate([batch["prompt_mask"], batch["solution_mask"]], axis=1).astype(bool)
    mask = batch["solution_mask"].astype(jnp.float32)
    sft = registry.get("loss", "sft")

    def loss_of(p):
        logp, _ = completion_logprobs(model_cfg, p, tokens, valid, P, 1.0)
        return sft({"logp": logp, "mask": mask}, None)

    return jax.value_and_grad(loss_of, has_aux=True)(params)


def make_sft_step(model_cfg: ModelConfig, optimizer, donate=True):
    def step(state: TrainState, batch):
        (loss, m), grads = sft_loss_and_grads(model_cfg, state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        m = dict(m, loss=loss, grad_norm=optax.tree.norm(grads))
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), m
    return jax.jit(step, donate_argnums=(0,) if donate else ())

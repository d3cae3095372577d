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
"""
import functools
from typing import Any, Callable, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlpt import registry
from rlpt.models.config import ModelConfig
from rlpt.models.transformer import forward, token_logprobs
from rlpt.sampling import SampleOutput, SamplingConfig, completion_inputs, sample


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    ref_params: Any   # frozen reference policy (None when no loss term needs it)
    step: jax.Array   # int32 scalar: iterations done
    rng: jax.Array    # base PRNG key; iteration rng = fold_in(rng, step)


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


def completion_logprobs(model_cfg: ModelConfig, params, tokens_NL, valid_NL, prompt_width: int,
                        temperature: float, with_entropy: bool = False):
    """Teacher-forced log-probs (and entropies) of completion tokens, from logits / temperature.

    tokens_NL = [prompt (width P, left-padded) | completion (T)]; logits at columns P-1 .. L-2
    predict the completion tokens.
    """
    logits = forward(model_cfg, params, tokens_NL, valid_NL)[:, prompt_width - 1:-1]
    logp = token_logprobs(logits, tokens_NL[:, prompt_width:], temperature)
    if not with_entropy:
        return logp, None
    lp_all = jax.nn.log_softmax(logits / temperature, axis=-1)
    return logp, -jnp.sum(jnp.exp(lp_all) * lp_all, axis=-1)


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


class RLStep:
    """Builds the pieces of the step from config. All methods are pure functions of arrays."""

    def __init__(self, model_cfg: ModelConfig, cfg, optimizer, reward_fn):
        self.model_cfg, self.cfg, self.optimizer, self.reward_fn = model_cfg, cfg, optimizer, reward_fn
        s = cfg.sampling
        self.scfg = SamplingConfig(
            max_new_tokens=s.max_new_tokens, num_samples=s.num_samples, temperature=s.temperature,
            top_k=s.top_k, top_p=s.top_p, greedy=False, stop_tokens=tuple(s.stop_tokens),
            min_new_tokens=s.min_new_tokens, pad_id=s.pad_id, loop=s.loop)
        self.algo = cfg.algo
        self.loss_fn = registry.get("loss", cfg.algo.name)
        self.adv_fn = registry.get("advantage", cfg.algo.advantage)
        self.tau = s.temperature
        self.need_ref = float(cfg.algo.get("beta", 0.0)) > 0
        self.multi_update = cfg.rl.ppo_epochs * cfg.rl.minibatches > 1

    # -- pieces --------------------------------------------------------------------------
    def rollout(self, state: TrainState, batch) -> SampleOutput:
        key = jax.random.fold_in(state.rng, state.step)
        return sample(self.model_cfg, state.params, batch["prompt"], batch["prompt_mask"],
                      jax.random.fold_in(key, 0), self.scfg)

    def reward(self, batch, out: SampleOutput):
        G = self.scfg.num_samples
        rep = lambda x: jnp.repeat(x, G, axis=0)
        r, aux = self.reward_fn(out.tokens, out.mask, rep(batch["target"]), rep(batch["target_len"]))
        return r.astype(jnp.float32), aux

    def update(self, state: TrainState, batch, out: SampleOutput, rewards_N) -> Tuple[TrainState, Dict]:
        cfg, G = self.cfg, self.scfg.num_samples
        key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 1)
        P = batch["prompt"].shape[1]
        tokens, valid = completion_inputs(batch["prompt"], batch["prompt_mask"], out, G)
        mask = out.mask
        adv = self.adv_fn(rewards_N, mask, self.algo, lengths=out.lengths, entropy=out.entropies,
                          old_logp=out.logprobs, correct=rewards_N)
        if adv.ndim == 1:
            adv = adv[:, None] * mask
        logp_of = functools.partial(completion_logprobs, self.model_cfg, prompt_width=P,
                                    temperature=self.tau)
        data = {"tokens": tokens, "valid": valid, "mask": mask, "advantages": adv,
                "rewards": rewards_N}
        if self.need_ref:
            data["ref_logp"] = jax.lax.stop_gradient(logp_of(state.ref_params, tokens, valid)[0])
        if self.multi_update:
            data["old_logp"] = jax.lax.stop_gradient(logp_of(state.params, tokens, valid)[0])

        B = batch["prompt"].shape[0]
        E, M = cfg.rl.ppo_epochs, cfg.rl.minibatches
        perms = jnp.stack([jax.random.permutation(jax.random.fold_in(key, e), B) for e in range(E)])
        groups = perms.reshape(E * M, B // M)                     # group-preserving minibatches
        rows = (groups[:, :, None] * G + jnp.arange(G)).reshape(E * M, -1)
        with_entropy = float(self.algo.get("entropy_coef", 0.0)) > 0

        def one_update(carry, idx):
            params, opt_state = carry
            mb = jax.tree_util.tree_map(lambda x: x[idx], data)

            def loss_of(p):
                logp, ent = logp_of(p, mb["tokens"], mb["valid"], with_entropy=with_entropy)
                lb = {"logp": logp, "mask": mb["mask"], "advantages": mb["advantages"],
                      "rewards": mb["rewards"], "step": state.step,
                      "old_logp": mb["old_logp"] if self.multi_update
                      else jax.lax.stop_gradient(logp)}
                if self.need_ref:
                    lb["ref_logp"] = mb["ref_logp"]
                if with_entropy:
                    lb["entropy"] = ent
                return self.loss_fn(lb, self.algo)

            (loss, m), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            m = dict(m, loss=loss, grad_norm=optax.tree.norm(grads))
            return (optax.apply_updates(params, updates), opt_state), m

        (params, opt_state), ms = jax.lax.scan(one_update, (state.params, state.opt_state), rows)
        metrics = {k: v.mean() for k, v in ms.items()}
        lengths = out.lengths.astype(jnp.float32)
        metrics.update(
            reward_mean=rewards_N.mean(), reward_std=rewards_N.std(),
            entropy_sampled=(out.entropies * mask).sum() / jnp.maximum(mask.sum(), 1),
            response_len=lengths.mean(), response_len_max=lengths.max(),
            stopped_frac=out.stopped.astype(jnp.float32).mean(),
            zero_adv_group_frac=_group_stats(rewards_N, G),
        )
        new = state.replace(params=params, opt_state=opt_state, step=state.step + 1)
        return new, metrics

    # -- the fused program ------------------------------------------------------------------
    def fused(self, state: TrainState, batch):
        out = self.rollout(state, batch)
        rewards, aux = self.reward(batch, out)
        state, metrics = self.update(state, batch, out, rewards)
        metrics["accuracy"] = (rewards > 0.5).astype(jnp.float32).mean()
        for k, v in aux.items():
            metrics[f"reward_{k}"] = jnp.asarray(v, jnp.float32).mean()
        return state, metrics


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
    G = rl.scfg.num_samples

    def step(state, batch):
        out = rollout(state, batch)
        host = jax.device_get(out)
        rep = lambda x: np.repeat(np.asarray(x), G, axis=0)
        r = np.asarray(host_reward(host.tokens, host.mask, rep(batch["target"]),
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

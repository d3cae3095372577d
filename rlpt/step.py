"""The generic fused RL step: sample -> reward -> hooks -> advantages -> epochs x minibatches of
optax updates, one XLA program. No algorithm and no feature is named here: the step runs the
CHAIN of its spec (rlpt.algorithms.base.chain_of: shapings, feature pieces, the algorithm's own
hooks), stage by stage, each piece in chain order; rollouts and rewards are arguments.

    spec = StepSpec(...)                      # static: shapes, names, which terms exist
    state, metrics = fused_step(spec, state, batch, hp)

`hp = {"optim": ..., "algo": ...}` is the dynamic pytree (learning rate, beta, clip ranges, ...):
a new value is a new argument, never a recompile, and `vmap` over it is a sweep. The iteration's
rng is `fold_in(state.rng, state.step)`: sub-key 0 samples, 1 draws the minibatch permutations,
2 extra rollouts, 3 the pre-rollout hook. With one epoch and one minibatch old_logp is
`stop_gradient(logp)` (ratio exactly 1), otherwise it is computed once with the pre-update params.
Minibatches hold whole groups, so each prompt is computed once per group.

Every step logs the sampler/trainer mismatch (rlpt.losses.mismatch: `mismatch_logp_abs_mean`,
`mismatch_logp_abs_max`, `mismatch_kl`) between the sampler's log-probs (`out.logprobs`, in the
loss inputs as `sampler_logp`) and the trainer's under the pre-update params over the mask's
tokens: the loss's own `old_logp` with one epoch and one minibatch, else `data["old_logp"]`. The
chain's `token_weight` hooks (e.g. rlpt.pieces.mismatch) multiply into `lb["token_weight"]`.
"""
import dataclasses
import functools
import operator
from typing import Any, Callable, Dict

import jax
import jax.numpy as jnp

from rlpt.algorithms.base import (AlgoConfig, Algorithm, accumulation_blocker, chain_of,
                                  iteration_key, policy_loss_batch, policy_outputs,
                                  rollout_logprobs)
from rlpt.logprobs import completion_logprobs
from rlpt.losses.mismatch import mismatch_metrics
from rlpt.losses.supervised import nll_minus_entropy
from rlpt.models.config import ModelConfig
from rlpt.optim import Optimizer, apply_update
from rlpt.rewards.host_guard import safe_host_reward
from rlpt.sampling import Rollout, SamplingConfig
from rlpt.state import TrainState, model_params


@dataclasses.dataclass(frozen=True, eq=False)
class StepSpec:
    """The static part of the step. `algo` holds the static fields of cfg.algo; `models` the
    ModelConfig of each frozen model by role; `reward(frozen, tokens, mask, target, target_len)
    -> (rewards [N], aux)`; `advantage(rewards, mask, c, **extras)` by name from the registry;
    `chain` the pieces the step runs (default: `chain_of(algo, algorithm)`)."""
    model_cfg: ModelConfig
    scfg: SamplingConfig
    algorithm: Algorithm
    algo: Dict[str, Any]
    advantage: Callable
    optimizer: Optimizer
    rollout: Rollout
    reward: Callable
    batch_size: int
    ppo_epochs: int = 1
    minibatches: int = 1
    grad_accum: int = 1   # > 1: each minibatch's gradient over this many row microbatches
    models: Dict[str, ModelConfig] = dataclasses.field(default_factory=dict)
    per_prompt_metrics: bool = False
    nonfinite_reward: float = 0.0   # what a NaN / infinite (or raising host) reward scores
    chain: tuple = None

    def __post_init__(self):
        if self.chain is None:
            object.__setattr__(self, "chain", chain_of(self.algo, self.algorithm))
        why = self.grad_accum > 1 and accumulation_blocker(self.algorithm, self.chain)
        if why:   # rlpt.config.validate_grad_accum says so first, naming the key
            raise ValueError(f"grad_accum={self.grad_accum}: {why}")

    @property
    def G(self) -> int:
        return self.scfg.num_samples

    @property
    def multi_update(self) -> bool:
        return self.ppo_epochs * self.minibatches > 1

    def needs(self, loss_input: str) -> bool:
        """Whether a piece of the chain needs `loss_input` (e.g. "entropy") from the forward."""
        return any(loss_input in p.loss_inputs for p in self.chain)

    def hooks(self, stage: str):
        """The chain's hooks of one stage, in chain order."""
        return [getattr(p, stage) for p in self.chain if getattr(p, stage) is not None]

    def config(self, hp) -> AlgoConfig:
        return AlgoConfig(self.algo, hp["algo"])


def rollout_phase(spec: StepSpec, state: TrainState, batch, hp):
    """The pre-rollout hook and the rollout: -> (batch, out)."""
    for hook in spec.hooks("before_rollout"):
        batch = hook(spec, state, batch, spec.config(hp))
    out = spec.rollout.sample(spec.model_cfg, model_params(state.params, state.frozen), batch,
                              iteration_key(state, 0), spec.scfg)
    return batch, out


def reward_inputs(spec: StepSpec, batch, out, hp):
    tokens, mask = spec.rollout.reward_inputs(out)
    for hook in spec.hooks("reward_inputs"):
        tokens, mask = hook(spec, batch, tokens, mask, spec.config(hp))
    return tokens, mask


def repeat_targets(spec: StepSpec, batch):
    rep = lambda x: jnp.repeat(x, spec.G, axis=0)
    return rep(batch["target"]), rep(batch["target_len"])


def finite_rewards(spec: StepSpec, r):
    """Rewards with each non-finite one replaced by `spec.nonfinite_reward`, and their count."""
    bad = ~jnp.isfinite(r)
    return jnp.where(bad, spec.nonfinite_reward, r), bad.sum().astype(jnp.float32)


def rewards_of(spec: StepSpec, state: TrainState, batch, out, hp):
    """`(rewards [N], aux)`; a non-finite reward never propagates (`finite_rewards`, counted in
    the metric `reward_nonfinite`)."""
    tokens, mask = reward_inputs(spec, batch, out, hp)
    r, aux = spec.reward(state.frozen, tokens, mask, *repeat_targets(spec, batch))
    r, n_bad = finite_rewards(spec, r.astype(jnp.float32))
    return r, dict(aux, nonfinite=n_bad)


def _minibatch_loss(spec: StepSpec, c, step, params, mb, mbp, logp=None, entropy=None):
    """The loss of minibatch rows `mb` (and per-prompt rows `mbp`); `logp`/`entropy` given: the
    default loss inputs from them instead of a forward (`accumulated_loss_and_grads`)."""
    A = spec.algorithm
    lb = {"step": step}
    lb.update(A.loss_batch(spec, params, mb, mbp, c) if A.loss_batch
              else policy_loss_batch(spec, params, mb, c, logp, entropy))
    pre = {}
    if not spec.multi_update and "sampler_logp" in lb:   # old_logp = sg(logp): pre-update
        pre = mismatch_metrics(lb["old_logp"], lb["sampler_logp"], lb["mask"])
    weights = [hook(spec, lb, c) for hook in spec.hooks("token_weight")]
    if weights:
        lb["token_weight"] = functools.reduce(operator.mul, [w for w, _ in weights])
        for _, m in weights:
            pre.update(m)
    loss, metrics = A.loss(lb, c)
    metrics = dict(pre, **metrics)
    for hook in spec.hooks("loss_term"):
        term, m = hook(spec, params, mb, mbp, c)
        loss = loss + term
        metrics = dict(metrics, **m)
    return loss, metrics


def accumulated_loss_and_grads(spec: StepSpec, c, step, params, frozen, mb, mbp):
    """`((loss, metrics), grads)` of one minibatch, its rows in `spec.grad_accum` microbatches
    of whole groups: exactly `jax.value_and_grad` of `_minibatch_loss`, with one microbatch's
    activations alive at a time. The loss depends on the params only through the rows'
    completion log-probs (and entropies) y = (y_1..y_K), so dL/dθ = Σ_k J_k(θ)ᵀ ∂L/∂y_k:
      1. y_k of each microbatch, forward only (`lax.map`);
      2. L(y) and its cotangent ∂L/∂y ([R, T] arrays: every global denominator of the loss, a
         token mean over the whole minibatch, a group statistic, stays exact);
      3. each microbatch's VJP with its slice of ∂L/∂y, summed in float32 under `lax.scan`.
    Costs one forward more than the plain step (about 4/3 of its FLOPs)."""
    K, T = spec.grad_accum, mb["mask"].shape[1]

    def outputs(p, tokens, valid):   # (logp, entropy) or (logp,): the differentiated inputs
        logp, ent = policy_outputs(spec, model_params(p, frozen), tokens, valid, T)
        return (logp,) if ent is None else (logp, ent)

    split = lambda x: x.reshape(K, x.shape[0] // K, *x.shape[1:])
    rows = (split(mb["tokens"]), split(mb["valid"]))
    ys = jax.lax.map(lambda tv: outputs(params, *tv), rows)
    ys = jax.tree_util.tree_map(lambda y: y.reshape(-1, *y.shape[2:]), ys)
    loss_of = lambda ys: _minibatch_loss(spec, c, step, None, mb, mbp, *ys)
    (loss, m), cot = jax.value_and_grad(loss_of, has_aux=True)(ys)

    def add_microbatch(g, xs):
        tokens, valid, ct = xs
        _, vjp = jax.vjp(lambda p: outputs(p, tokens, valid), params)
        return jax.tree_util.tree_map(lambda a, b: a + b.astype(jnp.float32), g, vjp(ct)[0]), None

    zeros = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    grads, _ = jax.lax.scan(add_microbatch, zeros, (*rows, jax.tree_util.tree_map(split, cot)))
    return (loss, m), grads


def update_phase(spec: StepSpec, state: TrainState, batch, out, raw_N, hp):
    """Everything after the reward: -> (new state, metrics)."""
    c, G = spec.config(hp), spec.G
    step_metrics, rewards_N = {}, raw_N
    for hook in spec.hooks("shape"):
        rewards_N, m = hook(spec, state, rewards_N, raw_N, out, c)
        step_metrics.update(m, task_reward_mean=raw_N.mean())
    rewards_N = rewards_N.astype(jnp.float32)
    for hook in spec.hooks("select"):
        batch, out, raw_N, rewards_N, m = hook(spec, batch, out, raw_N, rewards_N, c)
        step_metrics.update(m)
    P = batch["prompt"].shape[1]
    tokens, valid = spec.rollout.teacher_inputs(batch, out, G)
    mask = out.mask
    data = {"tokens": tokens, "valid": valid, "mask": mask, "rewards": rewards_N,
            "sampler_logp": out.logprobs}
    per_prompt = {}   # arrays with the prompt on axis 0 (minibatched by group)
    adv_extras = dict(lengths=out.lengths, entropy=out.entropies, old_logp=out.logprobs,
                      correct=rewards_N)
    for hook in spec.hooks("before_advantages"):
        data, more, m = hook(spec, state, batch, out, data, c)
        adv_extras.update(more)
        step_metrics.update(m)
    adv = spec.advantage(rewards_N, mask, c, **adv_extras)
    data["advantages"] = adv[:, None] * mask if adv.ndim == 1 else adv
    if spec.multi_update:
        data["old_logp"] = rollout_logprobs(spec, model_params(state.params, state.frozen),
                                            tokens, valid, P)
        step_metrics.update(mismatch_metrics(data["old_logp"], out.logprobs, mask))
    for hook in spec.hooks("extras"):
        data, more, m = hook(spec, state, batch, out, data, raw_N, c, iteration_key(state, 2))
        per_prompt.update(more)
        step_metrics.update(m)

    B = batch["prompt"].shape[0]
    E, M = spec.ppo_epochs, spec.minibatches
    key = iteration_key(state, 1)
    perms = jnp.stack([jax.random.permutation(jax.random.fold_in(key, e), B) for e in range(E)])
    groups = perms.reshape(E * M, B // M)                     # group-preserving minibatches
    rows = (groups[:, :, None] * G + jnp.arange(G)).reshape(E * M, -1)
    # the trainable params (LoRA: the adapters) are the argument; the loss runs on them attached
    loss_of = lambda p, mb, mbp: _minibatch_loss(spec, c, state.step,
                                                 model_params(p, state.frozen), mb, mbp)

    def one_update(carry, idx):
        params, opt_state = carry
        mb = jax.tree_util.tree_map(lambda x: x[idx[0]], data)
        mbp = jax.tree_util.tree_map(lambda x: x[idx[1]], per_prompt)
        if spec.grad_accum > 1:
            (loss, m), grads = accumulated_loss_and_grads(spec, c, state.step, params,
                                                          state.frozen, mb, mbp)
        else:
            (loss, m), grads = jax.value_and_grad(loss_of, has_aux=True)(params, mb, mbp)
        params, opt_state, guard = apply_update(spec.optimizer, loss, grads, opt_state, params,
                                                hp["optim"])
        return (params, opt_state), dict(m, loss=loss, **guard)

    (params, opt_state), ms = jax.lax.scan(one_update, (state.params, state.opt_state),
                                           (rows, groups))
    metrics = {k: v.mean() for k, v in ms.items()}
    metrics["nonfinite_updates"] = ms["nonfinite_updates"].sum()
    algo_state = state.algo_state
    for hook in spec.hooks("after_update"):
        params, opt_state, algo_state, m = hook(spec, params, opt_state, algo_state, batch,
                                                raw_N, c, hp, state.frozen)
        metrics.update(m)
    lengths = out.lengths.astype(jnp.float32)
    rows_N = rewards_N.reshape(-1, G)
    metrics.update(
        reward_mean=rewards_N.mean(), reward_std=rewards_N.std(),
        entropy_sampled=(out.entropies * mask).sum() / jnp.maximum(mask.sum(), 1),
        response_len=lengths.mean(), response_len_max=lengths.max(),
        stopped_frac=out.stopped.astype(jnp.float32).mean(),
        zero_adv_group_frac=jnp.mean(jnp.all(rows_N == rows_N[:, :1], axis=1).astype(jnp.float32)))
    metrics.update(step_metrics)
    return state.replace(params=params, opt_state=opt_state, algo_state=algo_state,
                         step=state.step + 1), metrics


def outcome_metrics(spec: StepSpec, raw_N, aux, out) -> Dict[str, jax.Array]:
    """Accuracy (the reward's `correct` when it gives one, else reward > 0.5), the reward's
    auxiliary terms and the rollout's own metrics."""
    correct = jnp.asarray(aux["correct"] if "correct" in aux else raw_N > 0.5, jnp.float32)
    m = {"accuracy": correct.mean()}
    if spec.per_prompt_metrics:
        m["accuracy_per_prompt"] = correct.reshape(-1, spec.G).mean(axis=1)
    for k, v in aux.items():
        m[f"reward_{k}"] = jnp.asarray(v, jnp.float32).mean()
    m.update(spec.rollout.metrics(out))
    return m


def fused_step(spec: StepSpec, state: TrainState, batch, hp):
    """One RL iteration: -> (new state, metrics)."""
    batch, out = rollout_phase(spec, state, batch, hp)
    raw_N, aux = rewards_of(spec, state, batch, out, hp)
    state, metrics = update_phase(spec, state, batch, out, raw_N, hp)
    metrics.update(outcome_metrics(spec, raw_N, aux, out))
    return state, metrics


def make_fused_step(spec: StepSpec, state_shardings=None, donate=True, iters_per_call=1):
    """`step(state, batch, hp) -> (state, metrics)` jitted; with `iters_per_call` K > 1 the batch
    is stacked [K, B, ...] and K iterations run under `lax.scan` (metrics stacked [K])."""
    if iters_per_call == 1:
        fn = functools.partial(fused_step, spec)
    else:
        def fn(state, stacked, hp):
            return jax.lax.scan(lambda s, b: fused_step(spec, s, b, hp), state, stacked)
    kw = {}
    if state_shardings is not None:
        kw = dict(in_shardings=(state_shardings, None, None), out_shardings=(state_shardings, None))
    return jax.jit(fn, donate_argnums=(0,) if donate else (), **kw)


def make_split_step(spec: StepSpec, host_reward: Callable):
    """The host boundary as two programs: rollout on device, reward in Python, update on device.
    `host_reward` takes numpy `(tokens [N,T], mask [N,T], target [N,A], target_len [N])` and
    returns rewards [N]; it runs behind `safe_host_reward` (a raising row or a non-finite reward
    scores `spec.nonfinite_reward`, counted in `reward_errors`). Returns `step(state, batch, hp)
    -> (state, metrics)`."""
    rollout = jax.jit(functools.partial(rollout_phase, spec))
    inputs = jax.jit(lambda batch, out, hp: (reward_inputs(spec, batch, out, hp),
                                             repeat_targets(spec, batch)))
    update = jax.jit(functools.partial(update_phase, spec), donate_argnums=(0,))
    guarded = safe_host_reward(host_reward, spec.nonfinite_reward)

    def step(state, batch, hp):
        batch, out = rollout(state, batch, hp)
        (tokens, mask), (target, target_len) = jax.device_get(inputs(batch, out, hp))
        r, n_bad = guarded(tokens, mask, target, target_len)
        r = jnp.asarray(r)
        state, metrics = update(state, batch, out, r, hp)
        metrics.update(outcome_metrics(spec, r, {"errors": float(n_bad)}, out))
        return state, metrics
    return step


def sft_loss_and_grads(model_cfg: ModelConfig, params, batch, loss_mask: str = "solution_mask",
                       frozen=None):
    """SFT on (prompt, solution): token-mean NLL of the tokens in `batch[loss_mask]`, teacher
    forcing over the whole solution (`solution_mask`); gradients with respect to `params` (with a
    LoRA base in `frozen`: the adapters, attached inside)."""
    P = batch["prompt"].shape[1]
    tokens = jnp.concatenate([batch["prompt"], batch["solution"]], axis=1)
    valid = jnp.concatenate([batch["prompt_mask"], batch["solution_mask"]], axis=1).astype(bool)
    mask = batch[loss_mask].astype(jnp.float32)

    def loss_of(p):
        logp, _ = completion_logprobs(model_cfg, model_params(p, frozen), tokens, valid, P, 1.0)
        return nll_minus_entropy(logp, mask, None, 0.0)

    return jax.value_and_grad(loss_of, has_aux=True)(params)


def sft_step(model_cfg: ModelConfig, optimizer: Optimizer, loss_mask="solution_mask"):
    """The pure `step(state, batch, hp) -> (state, metrics)` of supervised fine-tuning; tool
    demonstrations put the loss on `solution_loss_mask` (model tokens only)."""
    def step(state: TrainState, batch, hp):
        (loss, m), grads = sft_loss_and_grads(model_cfg, state.params, batch, loss_mask,
                                              state.frozen)
        params, opt_state, guard = apply_update(optimizer, loss, grads, state.opt_state,
                                                state.params, hp["optim"])
        m = dict(m, loss=loss, **guard)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), m
    return step


def make_sft_step(model_cfg: ModelConfig, optimizer: Optimizer, loss_mask="solution_mask",
                  donate=True):
    """`sft_step` jitted (the state donated unless `donate=False`)."""
    return jax.jit(sft_step(model_cfg, optimizer, loss_mask),
                   donate_argnums=(0,) if donate else ())

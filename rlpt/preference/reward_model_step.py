"""The jitted reward-model training step, generic over the reward-model algorithms.

    state, metrics = step(state, batch, hp)   # hp = {"optim": optim_hparams(cfg.rm.optim),
                                              #       "algo": rlpt.preference.config.rm_hparams}

The kind `cfg.rm.kind` k is the record `rm_<k>` of the registry (rlpt/algorithms/rm_<k>.py,
`Algorithm(kind="reward_model")`: bt, vrpo, rlaif_soft, rluf, rlsf); its loss and hooks say what
the kind does, the step never asks which kind it runs. The state is rlpt.state.TrainState with
the RM as `params`; kinds that sample read the policy from the frozen model `frozen["policy"]`
(the SFT model). `hp["algo"]` (optional) holds the record's declared dynamic fields of `cfg.rm`.

Batches are groups: prompt [B, P] and K responses per prompt `responses, response_mask
[B, K, R]` with `scores [B, K]` = their task rewards (rlpt.tasks.synthetic_pairs), plus the
task's `target, target_len`.

Hooks (`trainer_hooks` of the record, every one optional; the default in brackets). `c` is the
record's defaults overlaid with `cfg.rm` (rlpt.preference.records.view), `spec` this step object
(`model_cfg` the RM's, `policy_cfg`, `scfg`, `score_groups`, `policy_samples`):

  num_samples(c) -> int | None      responses per prompt sampled inside the step from the frozen
        "policy" [None: no sampling, no policy]
  prepare(spec, state, batch, data, c, key) -> (data, metrics)   labels and sampled responses
        (no gradient) added to `data` = the group (prompt, prompt_mask, responses,
        response_mask, scores) [nothing added]
  loss_inputs(spec, params, data, c) -> dict    the loss batch at the RM `params`
        [group_rewards: `rewards` r [B, K] of the group and its `scores`]

Held-out metric (`eval_accuracy`): pairwise accuracy of r against the task reward over all
C(K,2) pairs of held-out groups; pairs with tied task rewards are skipped; a pair whose RM
rewards tie counts as wrong (0).
"""
import jax
import jax.numpy as jnp

from rlpt.losses.preference import masked_mean
from rlpt.losses.reward_model import all_pairs, bt_pairwise, pairwise_accuracy
from rlpt.optim import apply_update
from rlpt.preference.records import REWARD_MODEL, algorithm_of, rm_name, view
from rlpt.preference.reward_model import score_groups
from rlpt.sampling import SamplingConfig, sample
from rlpt.state import TrainState, model_params

GROUP_KEYS = ("prompt", "prompt_mask", "responses", "response_mask", "scores")


def group_rewards(spec, params, data, c):
    """`rewards` [B, K] of the group's responses under the RM and their `scores`."""
    r = spec.score_groups(params, data["prompt"], data["prompt_mask"], data["responses"],
                          data["response_mask"])
    return {"rewards": r, "scores": data["scores"]}


DEFAULT_HOOKS = dict(
    num_samples=lambda c: None,
    prepare=lambda spec, state, batch, data, c, key: (data, {}),
    loss_inputs=group_rewards,
)


def hook_of(algorithm, name: str):
    """Hook `name` of a reward-model record: its own, else the default (module doc)."""
    return algorithm.trainer_hooks.get(name, DEFAULT_HOOKS[name])


def reward_model_algorithm(kind: str):
    """The record of reward-model kind `kind` (`cfg.rm.kind`)."""
    return algorithm_of(rm_name(kind), REWARD_MODEL)


class RewardModelStep:
    """The step of `rm` (a ConfigDict: `kind` and the record's knobs over its defaults).
    Kinds that sample need `policy_cfg` and `sampling`."""

    def __init__(self, rm_model_cfg, rm, optimizer, reward_fn, policy_cfg=None, sampling=None):
        self.algorithm = reward_model_algorithm(rm.kind)
        self.model_cfg, self.rm, self.optimizer, self.reward_fn = rm_model_cfg, rm, optimizer, \
            reward_fn
        self.policy_cfg = policy_cfg
        n = self.hook("num_samples")(self.config())
        self.samples_policy = n is not None
        if self.samples_policy:
            if policy_cfg is None or sampling is None:
                raise ValueError(f"reward model {rm.kind!r} samples from a policy: "
                                 "needs policy_cfg and sampling")
            self.scfg = SamplingConfig(
                max_new_tokens=sampling.max_new_tokens, num_samples=int(n),
                temperature=sampling.temperature, stop_tokens=tuple(sampling.stop_tokens),
                pad_id=sampling.pad_id, loop=sampling.loop)

    def hook(self, name):
        return hook_of(self.algorithm, name)

    def config(self, dynamic=None):
        """`c`: the record's defaults, `cfg.rm` and `dynamic` (hp["algo"]) over them."""
        return view(self.algorithm, self.rm, dynamic)

    # -- what hooks build on -----------------------------------------------------------------
    def score_groups(self, params, prompt, prompt_mask, responses, masks):
        """RM rewards `[B, K]` of K responses per prompt."""
        return score_groups(self.model_cfg, params, prompt, prompt_mask, responses, masks)

    def policy_samples(self, state, batch, key):
        """`scfg.num_samples` samples per prompt from the frozen "policy" and their task rewards
        `[B, n]`: (sampler output, rewards)."""
        out = sample(self.policy_cfg, state.frozen["policy"], batch["prompt"],
                     batch["prompt_mask"], key, self.scfg)
        n = self.scfg.num_samples
        rep = lambda x: jnp.repeat(x, n, axis=0)
        r, _ = self.reward_fn(out.tokens, out.mask, rep(batch["target"]), rep(batch["target_len"]))
        return out, r.astype(jnp.float32).reshape(-1, n)

    # -- prepare, loss, step -----------------------------------------------------------------
    def prepare(self, state: TrainState, batch, key, c=None):
        """Labels and sampled responses (no gradient): returns (data, metrics)."""
        c = self.config() if c is None else c
        data = {k: batch[k] for k in GROUP_KEYS}
        data, metrics = self.hook("prepare")(self, state, batch, data, c, key)
        return jax.tree_util.tree_map(jax.lax.stop_gradient, data), metrics

    def loss(self, params, data, c=None):
        c = self.config() if c is None else c
        return self.algorithm.loss(self.hook("loss_inputs")(self, params, data, c), c)

    def __call__(self, state: TrainState, batch, hp):
        """One update; `hp = {"optim": ..., "algo": ...}` (module doc)."""
        c = self.config(hp.get("algo"))
        key = jax.random.fold_in(state.rng, state.step)
        data, metrics = self.prepare(state, batch, key, c)
        # the trainable params (LoRA: the backbone's adapters and the head), attached inside
        loss_of = lambda p: self.loss(model_params(p, state.frozen), data, c)
        (loss, m), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        params, opt_state, guard = apply_update(self.optimizer, loss, grads, state.opt_state,
                                                state.params, hp["optim"])
        metrics.update(m, loss=loss, **guard)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), metrics

    def eval_accuracy(self, params, groups):
        """Held-out pairwise accuracy vs the task reward (ties in r count 0; see module doc):
        `rm_acc` over all valid pairs, `rm_acc_same_len` over pairs whose two responses have
        the same length (no length cue: e.g. a substituted digit)."""
        r = score_groups(self.model_cfg, params, groups["prompt"], groups["prompt_mask"],
                         groups["responses"], groups["response_mask"])
        _, margins, valid = bt_pairwise(r, groups["scores"])
        lengths = groups["response_mask"].sum(axis=-1)
        i, j = all_pairs(lengths.shape[1])
        same = valid & (lengths[:, i] == lengths[:, j])
        correct = (margins > 0).astype(jnp.float32)
        return {"rm_acc": pairwise_accuracy(r, groups["scores"]),
                "rm_acc_same_len": masked_mean(correct, same),
                "same_len_pairs": jnp.sum(same).astype(jnp.float32)}

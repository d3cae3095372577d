"""Online / semi-online DPO (Lanchantin et al., arXiv 2506.21495): the pairs are sampled inside
the step. N samples per prompt (`algo.num_samples`, 8) from the generator copy
`frozen["generator"]`, which is set to the policy first when `should_sync(step, algo.sync_every)`
(s=1 online, s semi-online, s=None offline: pairs sampled from the initial model); scored by the
task reward; best vs worst (`best_worst_pairs`, random tie-breaking); prompts without contrast
are masked out of the loss of the offline pairwise algorithm `algo.loss` (default "dpo", beta
0.1), whose reference (if any) and loss the step then runs. Held-out metric: DPO's.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from rlpt import registry
from rlpt.algorithms.base import Algorithm
from rlpt.algorithms.dpo import dpo_pair_metrics
from rlpt.errors import UserError
from rlpt.losses.preference import best_worst_pairs, resolve_config, take_samples
from rlpt.state import model_params

DEFAULTS = dict(beta=0.1, loss="dpo", sync_every=1, num_samples=8)
DYNAMIC = frozenset({"beta", "tau", "eps", "gamma"})   # those of the pairwise losses


def should_sync(step, s):
    """Semi-online DPO: whether to copy the trained policy into the generator before sampling the
    batch of update `step` (0-based count of updates done so far).

    True iff s is finite and `step % s == 0`: s=1 is online DPO (sync every step), s=None or inf
    is offline DPO (the generator stays the initial model; never sync). Step 0 returns True for
    finite s (a no-op: generator and policy both start as the initial model). `step` may be a
    Python int or a JAX integer array (then the result is an array).
    """
    if s is None or (isinstance(s, float) and math.isinf(s) and s > 0):
        return False
    if isinstance(s, bool) or not float(s).is_integer() or s < 1:
        raise ValueError(f"sync interval s must be a positive integer, None or inf; got {s!r}")
    if isinstance(step, (int, np.integer)) and step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step % int(s) == 0


def pairwise_algorithm(c):
    """The record of `algo.loss`, the offline pairwise algorithm run on the sampled pairs."""
    return registry.get("algorithm", c.get("loss", "dpo"))


def is_offline_pairwise(record) -> bool:
    """A preference algorithm that trains on given pairs as they are: no rollout, no pairs of its
    own, no earlier phase (dpo, ipo, cdpo, rdpo, simpo; not pre_dpo, online_dpo, drpo)."""
    return record.kind == "preference" and not {"prepare", "num_samples", "models"} & set(
        record.trainer_hooks)


def online_dpo_loss(batch, cfg):
    """The loss of the pairwise algorithm `cfg.loss` (module doc)."""
    return pairwise_algorithm(cfg).loss(batch, cfg)


def ref_keys(c):
    """Those of `algo.loss` (the step's default ("ref_w", "ref_l") when it has none)."""
    hooks = pairwise_algorithm(c).trainer_hooks
    return hooks["ref_keys"](c) if "ref_keys" in hooks else ("ref_w", "ref_l")


def frozen_roles(c):
    return (("reference",) if ref_keys(c) is not None else ()) + ("generator",)


def online_pairs(spec, state, batch, c, key):
    """Sync the generator, sample N per prompt, score, best vs worst: the pairs with their
    validity `mask` (and the reference's log-probs, `spec.pairwise_data`)."""
    s = c.sync_every
    gen = state.frozen["generator"]
    if s is not None:
        sync = should_sync(state.step, s)
        gen = jax.tree_util.tree_map(lambda p, g: jnp.where(sync, p, g), state.params, gen)
    n = spec.scfg.num_samples
    # the generator copy is of the trainable params (LoRA: the adapters), run on the base
    out = spec.sample(model_params(gen, state.frozen), batch["prompt"], batch["prompt_mask"],
                      jax.random.fold_in(key, 0))
    rep = lambda x: jnp.repeat(x, n, axis=0)
    r, _ = spec.task_reward(out.tokens, out.mask, rep(batch["target"]), rep(batch["target_len"]))
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
    return spec.pairwise_data(state.frozen, pairs, c), metrics, {"generator": gen}


def validate(cfg):
    a = resolve_config(cfg.algo, DEFAULTS)
    try:
        should_sync(0, a.sync_every)
    except ValueError as e:
        raise UserError(f"config algo.sync_every: {e}") from None
    if a.num_samples < 2:
        raise UserError("config algo.num_samples: online DPO needs >= 2 samples per prompt")
    if not (registry.has("algorithm", a.loss) and is_offline_pairwise(
            registry.get("algorithm", a.loss))):
        raise UserError(f"config algo.loss: {a.loss!r} is not a pairwise preference loss")
    pairwise = registry.get("algorithm", a.loss)
    if pairwise.validate is not None:
        pairwise.validate(cfg)


ALGORITHM = registry.register("algorithm", "online_dpo")(Algorithm(
    "online_dpo", online_dpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC, kind="preference",
    validate=validate,
    trainer_hooks=dict(ref_keys=ref_keys, frozen_roles=frozen_roles,
                       num_samples=lambda c: c.num_samples, needs_task_reward=lambda c: True,
                       prepare=online_pairs, eval_metrics=dpo_pair_metrics)))

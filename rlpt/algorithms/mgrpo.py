"""MGRPO (multi-layer GRPO, arXiv:2506.04746) [2nd]: layer-2 self-correction prompts.

Layer 2 takes `layer2_per_prompt = k` of the G layer-1 responses of each prompt (the first k;
samples of a group are exchangeable, so this is a uniform choice) and builds
`q + response (stop tokens removed) + layer2_instruction` (a fixed token sequence from config),
packed right. The step samples G corrections per layer-2 prompt, rewards each with the task
reward of its own completion, computes GRPO advantages within each layer-2 group, and the loss
sums both layers (`layer2_coef`, 1.0 = the plain sum). k = G uses every layer-1 response.

Logged per step (besides `layer2_reward_mean`, `layer2_accuracy`, `layer2_tokens`), with
"correct" = task reward > 0.5 and the source of a layer-2 sample = the layer-1 response its
prompt continues (`layer2_transitions`): `layer2_wrong_to_right` (share correct among the layer-2
samples from a wrong source; 0 when none), `layer2_right_to_wrong` (share wrong among those from a
right source; 0 when none) and `layer2_from_wrong_frac` (share of layer-2 samples from a wrong
source: the weight that pools the rates over steps without bias, e.g. `sum(w2r * frac) /
sum(frac)`).

`rlpt.pieces.self_correction.self_correction_rewards` is the evaluation-time version for any
policy (rlpt.evaluation.rollout.evaluate and the sweep's evaluation with
`eval.self_correction=True`): one greedy first attempt per prompt, the layer-2 prompt built by
`layer2_prompts` (k = 1), one greedy second attempt.
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import Algorithm, flatten_prefixed, policy_loss_batch
from rlpt.errors import UserError
from rlpt.logprobs import completion_logprobs, rows_logprobs
from rlpt.losses.aggregation import completion_mask
from rlpt.losses.policy import clip_objective, resolve
from rlpt.pieces.self_correction import layer2_prompts
from rlpt.sampling import completion_inputs, sample
from rlpt.state import model_params, reference_params


DEFAULTS = dict(beta=0.04, layer2_coef=1.0, layer2_instruction_ids=(), layer2_per_prompt=1)
DYNAMIC = frozenset({"layer2_coef"})


@registry.register("loss", "mgrpo")
def mgrpo_loss(batch, cfg):
    """MGRPO (multi-layer GRPO, arXiv:2506.04746) [2nd]: GRPO loss on layer 1 (the usual keys) +
    `layer2_coef` (1.0 = the spec's plain sum) * GRPO loss on the self-correction layer, whose
    arrays are given as `layer2_logp, layer2_old_logp, layer2_ref_logp, layer2_advantages,
    layer2_mask` (and optional `layer2_keep`, `layer2_entropy`). Top-level clip_frac/ratio_mean/kl
    are token-weighted over both layers; per-layer metrics are prefixed layer1_/layer2_."""
    c = resolve(cfg, "mgrpo", DEFAULTS)
    b2 = {k[len("layer2_"):]: v for k, v in batch.items() if k.startswith("layer2_")}
    b1 = {k: v for k, v in batch.items() if not k.startswith("layer2_")}
    l1, m1 = clip_objective(b1, c)
    l2, m2 = clip_objective(b2, c)
    loss = l1 + c.layer2_coef * l2
    n1, n2 = jnp.sum(completion_mask(b1)), jnp.sum(completion_mask(b2))
    metrics = {f"layer1_{k}": v for k, v in m1.items()}
    metrics.update({f"layer2_{k}": v for k, v in m2.items()})
    for k in ("clip_frac", "ratio_mean", "kl"):
        if k in m1 and k in m2:
            metrics[k] = (m1[k] * n1 + m2[k] * n2) / jnp.maximum(n1 + n2, 1.0)
    metrics["loss"] = loss
    return loss, metrics



def layer2_transitions(src_correct, correct2, group_size):
    """Training-time self-correction rates (module doc). `src_correct` [M] bool: the layer-1
    correctness of each layer-2 prompt's source response; `correct2` [M * G] bool: each layer-2
    sample's, row m*G + j a sample of prompt m. jit-safe (no branching on values)."""
    src = jnp.repeat(src_correct.astype(bool), group_size)
    c2 = correct2.astype(bool)
    f = lambda x: jnp.sum(x.astype(jnp.float32))
    n_wrong, n_right = f(~src), f(src)
    return {"layer2_wrong_to_right": f(~src & c2) / jnp.maximum(n_wrong, 1.0),
            "layer2_right_to_wrong": f(src & ~c2) / jnp.maximum(n_right, 1.0),
            "layer2_from_wrong_frac": n_wrong / src.size}


def extras(spec, state, batch, out, data, raw_N, c, key):
    """Layer 2: self-correction prompts, G samples each, their task rewards and advantages, as
    per-prompt arrays `l2_*` [B, k*G, ...]."""
    G, B = spec.G, batch["prompt"].shape[0]
    k = int(c.get("layer2_per_prompt", 1))
    prompt2, pmask2 = layer2_prompts(
        batch["prompt"], batch["prompt_mask"], out.tokens, out.mask, G, k,
        c.get("layer2_instruction_ids", ()), spec.scfg.stop_tokens, spec.scfg.pad_id)
    policy = model_params(state.params, state.frozen)
    out2 = sample(spec.model_cfg, policy, prompt2, pmask2, jax.random.fold_in(key, 0),
                  spec.scfg)
    rep = lambda x: jnp.repeat(x, k * G, axis=0)
    r2, _ = spec.reward(state.frozen, out2.tokens, out2.mask, rep(batch["target"]),
                        rep(batch["target_len"]))
    r2 = r2.astype(jnp.float32)
    adv2 = spec.advantage(r2, out2.mask, c, lengths=out2.lengths, entropy=out2.entropies,
                          old_logp=out2.logprobs, correct=r2)
    if adv2.ndim == 1:
        adv2 = adv2[:, None] * out2.mask
    tokens2, valid2 = completion_inputs(prompt2, pmask2, out2, G)
    P2 = prompt2.shape[1]
    d = {"tokens": tokens2, "valid": valid2, "mask": out2.mask, "advantages": adv2}
    lp = lambda p: jax.lax.stop_gradient(completion_logprobs(
        spec.model_cfg, p, tokens2, valid2, P2, spec.scfg.temperature)[0])
    if "ref_logp" in data:   # the KL piece ran (rlpt.pieces.kl)
        d["ref_logp"] = lp(reference_params(state.frozen))
    if spec.multi_update:
        d["old_logp"] = lp(policy)
    per_prompt = {f"l2_{n}": v.reshape((B, k * G) + v.shape[1:]) for n, v in d.items()}
    src_correct = raw_N.reshape(B, G)[:, :k].reshape(B * k) > 0.5
    return data, per_prompt, dict(
        layer2_transitions(src_correct, r2 > 0.5, G), layer2_reward_mean=r2.mean(),
        layer2_accuracy=(r2 > 0.5).astype(jnp.float32).mean(),
        layer2_tokens=jnp.sum(out2.mask, axis=1).mean())


def loss_batch(spec, params, mb, mbp, c):
    lb = policy_loss_batch(spec, params, mb, c)
    l2 = flatten_prefixed(mbp, "l2_")
    lp2, ent2 = rows_logprobs(spec.model_cfg, params, l2, spec.scfg.temperature,
                              spec.needs("entropy"))
    lb.update(layer2_logp=lp2, layer2_mask=l2["mask"], layer2_advantages=l2["advantages"],
              layer2_old_logp=l2["old_logp"] if spec.multi_update
              else jax.lax.stop_gradient(lp2))
    if "ref_logp" in l2:
        lb["layer2_ref_logp"] = l2["ref_logp"]
    if spec.needs("entropy"):
        lb["layer2_entropy"] = ent2
    return lb


def validate(cfg):
    k = int(cfg.algo.get("layer2_per_prompt", 1))
    if not 1 <= k <= cfg.sampling.num_samples:
        raise UserError(f"config algo.layer2_per_prompt: {k} must be in [1, num_samples]")


ALGORITHM = registry.register("algorithm", "mgrpo")(Algorithm(
    "mgrpo", mgrpo_loss, defaults=DEFAULTS, dynamic=DYNAMIC,
    validate=validate, extras=extras, loss_batch=loss_batch))

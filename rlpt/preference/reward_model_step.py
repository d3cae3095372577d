"""The jitted reward-model training step (losses from rlpt.losses.reward_model by name).

    state, metrics = step(state, batch, hp)       # hp = {"optim": optim_hparams(cfg.rm.optim)}

The state is rlpt.state.TrainState with the RM as `params`; the kinds that sample (vrpo, rlsf)
read the policy from its frozen model `frozen["policy"]` (the SFT model).

Batches are groups: prompt [B, P] and K responses per prompt `responses, response_mask
[B, K, R]` with `scores [B, K]` = their task rewards (rlpt.tasks.synthetic_pairs), plus the
task's `target, target_len`. With r = the RM (rlpt.preference.reward_model) and R = the task
reward:

* "bt" (InstructGPT, arXiv 2203.02155): Bradley-Terry `-log sig(r_w - r_l)` over all C(K,2)
  pairs of a prompt (pairs with tied scores skipped).
* "vrpo" (Robust RLHF, arXiv 2504.03784): labelled pair (y_w, y_l) = best vs worst of the group
  with auxiliary probability g = judge(R_w, R_l); D* on two responses sampled inside the step
  from the reference policy (`frozen["policy"]`, the SFT model) with g* = judge(R_a1, R_a2).
* "rlaif_soft" (arXiv 2309.00267): all C(K,2) pairs, soft label p = judge(R_a, R_b).
* "rluf" (arXiv 2505.14946): BCE on a binary implicit signal per response,
  `love ~ Bernoulli(love_correct if R > 0.5 else love_wrong)`.
* "rlsf" (arXiv 2507.21931): no labels: N samples from the policy (`frozen["policy"]`), each
  one's confidence = mean p(top-1) over its answer span (completion without the eos), pairs
  "a over b" with conf_a >= threshold and conf_a > conf_b, BT loss on those pairs.

The judge (a stand-in for an AI labeller) is a fixed noisy function of the task reward:
`judge(R_a, R_b) = sigmoid(judge_scale (R_a - R_b) + judge_noise * eps)`, eps ~ N(0, 1).

Held-out metric (`eval_accuracy`): pairwise accuracy of r against the task reward over all
C(K,2) pairs of held-out groups; pairs with tied task rewards are skipped; a pair whose RM
rewards tie counts as wrong (0).
"""
import jax
import jax.numpy as jnp

from rlpt import registry
from rlpt.losses.preference import masked_mean
from rlpt.losses.reward_model import all_pairs, bt_pairwise, pairwise_accuracy
from rlpt.models.transformer import forward
from rlpt.optim import apply_update
from rlpt.preference.pairs import (best_worst_pairs, confidence_pairs, span_confidence,
                                   take_samples, token_confidence_stats)
from rlpt.preference.reward_model import score_groups
from rlpt.sampling import SamplingConfig, sample
from rlpt.state import TrainState

RM_KINDS = ("bt", "vrpo", "rlaif_soft", "rluf", "rlsf")
LOSS_OF_KIND = {"bt": "bt_rm", "vrpo": "vrpo_rm", "rlaif_soft": "rlaif_soft_rm",
                "rluf": "rluf_rm", "rlsf": "bt_rm"}
SAMPLING_KINDS = ("vrpo", "rlsf")  # need a policy in state.frozen["policy"]


def judge_probability(r_a, r_b, key, scale: float, noise: float):
    """`sigmoid(scale (R_a - R_b) + noise * eps)`, eps ~ N(0, 1): a noisy AI judge."""
    eps = jax.random.normal(key, jnp.shape(r_a))
    return jax.nn.sigmoid(scale * (r_a - r_b) + noise * eps)


class RewardModelStep:
    """`rm` is a ConfigDict: kind, judge_scale, judge_noise, love_correct, love_wrong,
    num_samples (rlsf), confidence_method, threshold (rlsf) and the loss knobs."""

    def __init__(self, rm_model_cfg, rm, optimizer, reward_fn, policy_cfg=None, sampling=None):
        if rm.kind not in RM_KINDS:
            raise ValueError(f"unknown reward-model kind {rm.kind!r}; known: {RM_KINDS}")
        self.model_cfg, self.rm, self.optimizer, self.reward_fn = rm_model_cfg, rm, optimizer, \
            reward_fn
        self.loss_fn = registry.get("loss", LOSS_OF_KIND[rm.kind])
        self.policy_cfg = policy_cfg
        if rm.kind in SAMPLING_KINDS:
            if policy_cfg is None or sampling is None:
                raise ValueError(f"reward model {rm.kind!r} samples from a policy: "
                                 "needs policy_cfg and sampling")
            n = 2 if rm.kind == "vrpo" else int(rm.num_samples)
            self.scfg = SamplingConfig(
                max_new_tokens=sampling.max_new_tokens, num_samples=n,
                temperature=sampling.temperature, stop_tokens=tuple(sampling.stop_tokens),
                pad_id=sampling.pad_id, loop=sampling.loop)

    def _judge(self, r_a, r_b, key):
        return judge_probability(r_a, r_b, key, self.rm.judge_scale, self.rm.judge_noise)

    def _samples(self, state, batch, key):
        out = sample(self.policy_cfg, state.frozen["policy"], batch["prompt"],
                     batch["prompt_mask"], key, self.scfg)
        n = self.scfg.num_samples
        rep = lambda x: jnp.repeat(x, n, axis=0)
        r, _ = self.reward_fn(out.tokens, out.mask, rep(batch["target"]), rep(batch["target_len"]))
        return out, r.astype(jnp.float32).reshape(-1, n)

    def prepare(self, state: TrainState, batch, key):
        """Labels and sampled responses (no gradient): returns (data, metrics)."""
        kind, s = self.rm.kind, batch["scores"]
        data = {k: batch[k] for k in ("prompt", "prompt_mask", "responses", "response_mask")}
        metrics = {}
        if kind in ("bt", "rlaif_soft"):
            data["scores"] = s
            if kind == "rlaif_soft":
                i, j = all_pairs(s.shape[1])
                data["p"] = self._judge(s[:, i], s[:, j], key)
                agree = ((data["p"] > 0.5) == (s[:, i] > s[:, j])).astype(jnp.float32)
                contrast = (s[:, i] != s[:, j]).astype(jnp.float32)
                metrics["judge_agree"] = jnp.sum(agree * contrast) / jnp.maximum(
                    contrast.sum(), 1.0)
        elif kind == "rluf":
            p_love = jnp.where(s > 0.5, self.rm.love_correct, self.rm.love_wrong)
            data["labels"] = jax.random.bernoulli(key, p_love).astype(jnp.float32)
            metrics["love_rate"] = data["labels"].mean()
        elif kind == "vrpo":
            w, l, _ = best_worst_pairs(s)
            data["w"], data["l"] = w, l
            data["g"] = self._judge(take_samples(s, w), take_samples(s, l),
                                    jax.random.fold_in(key, 1))
            out, r = self._samples(state, batch, jax.random.fold_in(key, 2))
            data["extra"] = out.tokens.reshape(r.shape[0], 2, -1)
            data["extra_mask"] = out.mask.astype(jnp.int32).reshape(r.shape[0], 2, -1)
            data["g_star"] = self._judge(r[:, 0], r[:, 1], jax.random.fold_in(key, 3))
            metrics["sample_reward"] = r.mean()
        else:  # rlsf
            data.update(self._rlsf_pairs(state, batch, key, metrics))
        return jax.tree_util.tree_map(jax.lax.stop_gradient, data), metrics

    def _rlsf_pairs(self, state, batch, key, metrics):
        out, r = self._samples(state, batch, key)
        b, n = r.shape
        p = batch["prompt"].shape[1]
        rep = lambda x: jnp.repeat(x, n, axis=0)
        tokens = jnp.concatenate([rep(batch["prompt"]), out.tokens], axis=1)
        valid = jnp.concatenate([rep(batch["prompt_mask"]), out.mask], axis=1).astype(bool)
        logits = forward(self.policy_cfg, state.frozen["policy"], tokens, valid)[:, p - 1:-1]
        stats = token_confidence_stats(logits)
        stop = jnp.isin(out.tokens, jnp.array(self.scfg.stop_tokens))
        span = (out.mask > 0) & ~stop
        conf = span_confidence(span, self.rm.confidence_method, vocab_size=logits.shape[-1],
                               **stats).reshape(b, n)
        a, bb, pair_valid = confidence_pairs(conf, self.rm.threshold)
        group = lambda x: x.reshape(b, n, -1)
        gather = lambda x, idx: jnp.take_along_axis(x, idx[..., None], axis=1)
        responses = jnp.stack([gather(group(out.tokens), a), gather(group(out.tokens), bb)], 2)
        masks = jnp.stack([gather(group(out.mask.astype(jnp.int32)), a),
                           gather(group(out.mask.astype(jnp.int32)), bb)], 2)
        ra, rb = jnp.take_along_axis(r, a, 1), jnp.take_along_axis(r, bb, 1)
        v = pair_valid.astype(jnp.float32)
        metrics.update(confidence=conf.mean(), pair_frac=v.mean(), sample_reward=r.mean(),
                       label_agree=jnp.sum((ra > rb) * v) / jnp.maximum(v.sum(), 1.0))
        return {"pair_responses": responses, "pair_masks": masks, "pair_valid": pair_valid}

    def loss(self, params, data):
        kind = self.rm.kind
        groups = lambda resp, m: score_groups(self.model_cfg, params, data["prompt"],
                                              data["prompt_mask"], resp, m)
        if kind in ("bt", "rlaif_soft", "rluf"):
            r = groups(data["responses"], data["response_mask"])
        if kind == "bt":
            lb = {"rewards": r, "scores": data["scores"]}
        elif kind == "rlaif_soft":
            i, j = all_pairs(r.shape[1])
            lb = {"r_a": r[:, i].reshape(-1), "r_b": r[:, j].reshape(-1),
                  "p": data["p"].reshape(-1)}
        elif kind == "rluf":
            lb = {"logits": r.reshape(-1), "labels": data["labels"].reshape(-1)}
        elif kind == "vrpo":
            lab = jnp.stack([take_samples(data["responses"], data["w"]),
                             take_samples(data["responses"], data["l"])], axis=1)
            lab_m = jnp.stack([take_samples(data["response_mask"], data["w"]),
                               take_samples(data["response_mask"], data["l"])], axis=1)
            r_lab, r_ext = groups(lab, lab_m), groups(data["extra"], data["extra_mask"])
            lb = {"r_w": r_lab[:, 0], "r_l": r_lab[:, 1], "g": data["g"],
                  "r_a1": r_ext[:, 0], "r_a2": r_ext[:, 1], "g_star": data["g_star"]}
        else:  # rlsf: each valid pair is a 2-response group with scores (1, 0)
            b, npair, _, t = data["pair_responses"].shape
            pair_rows = jnp.repeat(data["prompt"], npair, axis=0), jnp.repeat(
                data["prompt_mask"], npair, axis=0)
            r = score_groups(self.model_cfg, params, *pair_rows,
                             data["pair_responses"].reshape(b * npair, 2, t),
                             data["pair_masks"].reshape(b * npair, 2, t))
            valid = data["pair_valid"].reshape(-1, 1).astype(jnp.float32)
            lb = {"rewards": r, "scores": jnp.broadcast_to(jnp.array([1.0, 0.0]), r.shape),
                  "response_mask": jnp.broadcast_to(valid, r.shape)}
        return self.loss_fn(lb, self.rm)

    def __call__(self, state: TrainState, batch, hp):
        """One update; `hp = {"optim": ...}` the dynamic hyperparameters (rlpt.optim)."""
        key = jax.random.fold_in(state.rng, state.step)
        data, metrics = self.prepare(state, batch, key)
        (loss, m), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, data)
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

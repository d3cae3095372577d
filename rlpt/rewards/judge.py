"""LM-as-judge reward: a frozen local rlpt model scores the policy's responses inside the step.

The judge is a second transformer (its own ModelConfig and params, the policy's vocabulary). For
every completion the reward builds the judge's prompt from token arrays on device (no decoding)
and reads the judge's next-token distribution at its last position:

    [bos] prefix | question | middle | response | suffix   ->   p(next token)

* `question`: the policy prompt, without its leading bos. The RL step passes only `target` /
  `target_len` to a reward, so the batch carries the left-padded prompt there
  (`rlpt.rewards.prompt_target.prompt_as_target`; the trainer does this when
  `reward.kind="judge"`).
* `response`: the completion tokens where `mask > 0`, up to (not including) the first stop token.
* `prefix`, `middle`, `suffix`: fixed texts from config, encoded once with the task's tokenizer
  (e.g. suffix `" Is the answer correct? Answer yes or no:"` for a chat judge; for the synthetic
  tasks' character tokenizer the default is just `?`, so the judge sees `<bos>12+34=46?`).

The segments are laid out in fixed-width columns (static shapes): the question keeps its left
padding and the response its right padding, so padding holes sit inside the row. That is exact,
not an approximation: positions are the running count of valid tokens and padded keys are
masked (`rlpt.models.transformer.forward`), so the judge computes what it would on the packed
sequence. The suffix is never empty, so the last column is always a real token.

Scores (`mode`), in [0, 1]:

* `yes_no`: `p(yes) / (p(yes) + p(no))` over the two verdict tokens, as generative verifiers
  score a solution by the probability of "Yes" (GenRM, arXiv 2408.15240; LLM-as-a-judge,
  arXiv 2306.05685). aux: `judge_p_yes` (unnormalised p(yes)), `judge_verdict_mass`
  (p(yes) + p(no): how much the judge follows the format).
* `digits`: the expected grade over K score tokens, `sum_i i p_i / sum_i p_i / (K - 1)`, the
  probability-weighted score of G-Eval (arXiv 2303.16634). aux: `judge_verdict_mass`.

The reward has the step's reward signature `fn(frozen, tokens, mask, target, target_len) ->
(rewards [N], aux)` and reads the judge's params from `frozen["judge"]`, a frozen model of the
train state: an *argument* of the jitted step, not a closed-over constant (JAX embeds
closed-over arrays into the program and drops their sharding), placed on the mesh with the
parameter rules like every model of the state.

Config (`cfg.reward.kind = "judge"`, knobs in `cfg.reward.judge`, see `judge_config`): the judge
is `preset` (random init with `seed`: smoke tests only) or `checkpoint`: a HF directory, a GGUF
file or a llama2.c file, recognised by `rlpt.models.load_checkpoint` (e.g. one written by
scripts/train_judge.py, which trains a verifier for the synthetic arithmetic tasks with
`rlpt.rewards.judge_train`); `checkpoint_format` is optional ("" detects the kind).
"""
import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from rlpt.errors import UserError
from rlpt.models.config import PRESETS, ModelConfig
from rlpt.models.transformer import forward
from rlpt.rewards.prompt_target import prompt_as_target

JUDGE_MODES = ("yes_no", "digits")


def judge_config(**overrides) -> ml_collections.ConfigDict:
    """`cfg.reward.judge` defaults (a character-tokenizer template for the synthetic tasks)."""
    c = ml_collections.ConfigDict(dict(
        preset="",                 # random-init judge of this preset (smoke tests), or
        checkpoint="",             # a trained judge: HF directory, .gguf or llama2.c .bin
        checkpoint_format="",      # optional: "" detects; "hf" | "gguf" | "llama2c" asserts
        seed=1,                    # init seed of a preset judge
        mode="yes_no",             # "yes_no" | "digits"
        prefix="", middle="", suffix="?",  # template texts (task tokenizer); suffix non-empty
        yes="y", no="n",           # verdict texts, one token each (mode yes_no)
        score_tokens="0123456789",  # grade texts, one character = one token each (mode digits)
        bos=True,                  # start the judge prompt with the tokenizer's bos
    ))
    c.update(overrides)
    return c


def validate_judge_config(c):
    """Structural checks of `cfg.reward.judge` (token-level checks: `judge_ids`)."""
    j = c.reward.get("judge")

    def fail(key, msg):
        raise UserError(f"config reward.judge.{key}: {msg}")

    if j is None:
        raise UserError("config reward.judge: reward.kind='judge' needs a reward.judge section "
                        "(rlpt.rewards.judge.judge_config())")
    if bool(j.preset) == bool(j.checkpoint):
        fail("preset", "set exactly one of reward.judge.preset and reward.judge.checkpoint")
    if j.preset and j.preset not in PRESETS:
        fail("preset", f"{j.preset!r} is not a preset; known: {sorted(PRESETS)}")
    if j.checkpoint_format not in ("", "hf", "gguf", "llama2c"):
        fail("checkpoint_format", f"{j.checkpoint_format!r}; expected '' (detect), 'hf', "
             "'gguf' or 'llama2c'")
    if j.mode not in JUDGE_MODES:
        fail("mode", f"{j.mode!r}; known: {list(JUDGE_MODES)}")
    if not j.suffix:
        fail("suffix", "must be non-empty (the verdict is read after its last token)")
    if j.mode == "yes_no" and (not j.yes or not j.no or j.yes == j.no):
        fail("yes", f"yes={j.yes!r} and no={j.no!r} must be two different non-empty texts")
    if j.mode == "digits" and len(j.score_tokens) < 2:
        fail("score_tokens", f"{j.score_tokens!r} needs at least 2 grades")


@dataclasses.dataclass(frozen=True)
class JudgeIds:
    """The template as token ids."""
    prefix: Tuple[int, ...]
    middle: Tuple[int, ...]
    suffix: Tuple[int, ...]
    verdict: Tuple[int, ...]   # (yes, no) or the K score tokens, lowest grade first
    bos: Optional[int]


def judge_ids(j, tokenizer) -> JudgeIds:
    """Encodes the template texts of `cfg.reward.judge` with the task tokenizer; each verdict
    text must be exactly one token."""
    def one(text, key):
        ids = tokenizer.encode(text)
        if len(ids) != 1:
            raise UserError(f"config reward.judge.{key}: {text!r} encodes to {len(ids)} tokens "
                            f"{ids}; a verdict must be exactly one token")
        return ids[0]
    verdict = ((one(j.yes, "yes"), one(j.no, "no")) if j.mode == "yes_no"
               else tuple(one(ch, "score_tokens") for ch in j.score_tokens))
    if len(set(verdict)) != len(verdict):
        raise UserError(f"config reward.judge: verdict tokens {verdict} are not distinct")
    bos = getattr(tokenizer, "bos_id", None) if j.bos else None
    if j.bos and bos is None:
        raise UserError("config reward.judge.bos: the tokenizer has no bos token")
    enc = lambda t: tuple(tokenizer.encode(t)) if t else ()
    return JudgeIds(enc(j.prefix), enc(j.middle), enc(j.suffix), verdict, bos)


def judge_inputs(ids: JudgeIds, question, question_mask, response, response_keep):
    """Judge rows `(tokens [N, L], valid [N, L])`, L = 1 + |prefix| + P + |middle| + T + |suffix|
    (see the module doc); `question_mask` already excludes the prompt's bos."""
    n = question.shape[0]
    fixed = lambda seq: (jnp.broadcast_to(jnp.asarray(seq, jnp.int32), (n, len(seq))),
                         jnp.ones((n, len(seq)), bool))
    parts = [fixed((ids.bos,)) if ids.bos is not None else None, fixed(ids.prefix),
             (question.astype(jnp.int32), question_mask.astype(bool)), fixed(ids.middle),
             (response.astype(jnp.int32), response_keep.astype(bool)), fixed(ids.suffix)]
    parts = [p for p in parts if p is not None and p[0].shape[1]]
    return (jnp.concatenate([p[0] for p in parts], axis=1),
            jnp.concatenate([p[1] for p in parts], axis=1))


def verdict_scores(mode: str, logits_NV, verdict) -> Tuple[jax.Array, dict]:
    """Scores in [0, 1] from the judge's last-position logits (see the module doc)."""
    p = jax.nn.softmax(logits_NV.astype(jnp.float32), axis=-1)[:, jnp.asarray(verdict)]
    mass = p.sum(-1)
    if mode == "yes_no":
        return p[:, 0] / jnp.maximum(mass, 1e-30), {"judge_p_yes": p[:, 0],
                                                     "judge_verdict_mass": mass}
    grades = jnp.arange(len(verdict), dtype=jnp.float32) / (len(verdict) - 1)
    return (p * grades).sum(-1) / jnp.maximum(mass, 1e-30), {"judge_verdict_mass": mass}


def judge_scores(model_cfg: ModelConfig, ids: JudgeIds, mode: str, stop_tokens, params, tokens,
                 mask, target, target_len) -> Tuple[jax.Array, dict]:
    """Scores [N] of completions `(tokens, mask)` by the frozen judge `params`; `target` /
    `target_len` carry the policy prompt (left-padded) and its length."""
    tokens = jnp.asarray(tokens, jnp.int32)
    before_stop = jnp.cumsum(jnp.isin(tokens, jnp.asarray(tuple(stop_tokens))), axis=1) == 0
    keep = (jnp.asarray(mask) > 0) & before_stop
    question = jnp.asarray(target, jnp.int32)
    width = question.shape[1]
    qmask = jnp.arange(width)[None, :] >= width - jnp.asarray(target_len)[:, None]
    if ids.bos is not None:  # the prompt's own bos would sit mid-row: drop it
        first = jnp.argmax(qmask, axis=1)
        is_bos = jnp.take_along_axis(question, first[:, None], axis=1)[:, 0] == ids.bos
        qmask = qmask & ~((jnp.arange(width)[None, :] == first[:, None]) & is_bos[:, None])
    rows, valid = judge_inputs(ids, question, qmask, tokens, keep)
    logits = forward(model_cfg, params, rows, valid)[:, -1]
    return verdict_scores(mode, logits, ids.verdict)


def judge_reward(model_cfg: ModelConfig, ids: JudgeIds, mode: str = "yes_no", stop_tokens=(2,)):
    """The step's reward `fn(frozen, tokens, mask, target, target_len) -> (rewards [N], aux)`,
    scored by the judge model `frozen["judge"]` (a frozen model of the train state, placed and
    passed like the policy, so the compiled step takes it as an argument)."""
    if mode not in JUDGE_MODES:
        raise ValueError(f"judge mode {mode!r}; known: {list(JUDGE_MODES)}")
    stop_tokens = tuple(stop_tokens)

    def reward(frozen, tokens, mask, target, target_len):
        return judge_scores(model_cfg, ids, mode, stop_tokens, frozen["judge"], tokens, mask,
                            target, target_len)
    return reward


def build_judge(cfg, task):
    """The judge of `cfg.reward.judge` for `task` (its tokenizer encodes the template):
    `(model_cfg, params, reward_fn)` with `reward_fn` from `judge_reward`."""
    j = cfg.reward.judge
    ids = judge_ids(j, task.tokenizer)
    if j.checkpoint:
        from rlpt.models import load_checkpoint
        model_cfg, params = load_checkpoint(j.checkpoint, cfg.model.dtype, j.checkpoint_format)
    else:
        from rlpt.models import get_model_config, init_params
        model_cfg = get_model_config(j.preset, dtype=cfg.model.dtype)
        params = init_params(model_cfg, jax.random.PRNGKey(int(j.seed)))
    vocab = int(getattr(task.tokenizer, "vocab_size", 0))
    if model_cfg.vocab_size < vocab:
        raise UserError(f"config reward.judge: judge vocabulary {model_cfg.vocab_size} is smaller "
                        f"than the tokenizer's {vocab}; the judge must share the policy's tokens")
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return model_cfg, params, judge_reward(model_cfg, ids, j.mode, tuple(cfg.sampling.stop_tokens))


def judge_batch(batch):
    """A task batch with the prompt in `target`/`target_len` (what the judge reads)."""
    return prompt_as_target(batch)

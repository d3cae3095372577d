"""Training a small judge for the synthetic arithmetic tasks (for tests and the judge demo).

A judge (rlpt.rewards.judge) is only as good as its training. For the synthetic tasks there is
no pretrained judge, so this trains one as a generative verifier (GenRM, arXiv 2408.15240):
next-token cross-entropy on the verdict token (`yes` for a correct answer, `no` for a wrong
one) after the exact judge prompt that `judge_scores` builds (`judge_inputs`), so training and
scoring see identical rows. Wrong answers: near misses (gold +- 1..10, the hard case for a
verifier), numbers from anywhere in the answer range, and empty answers.
"""
import functools
from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import forward
from rlpt.rewards.judge import JudgeIds, judge_inputs


NEGATIVES = ("near", "far", "empty")


def _wrong_answer(rng, gold: int, kind: str, max_value: int):
    if kind == "near":    # gold +- 1..10, made non-negative (may hit gold: then it is correct)
        return str(abs(gold + int(rng.choice([-1, 1]) * rng.integers(1, 11))))
    if kind == "far":     # any number of the answer's range
        return str(int(rng.integers(0, max_value + 1)))
    if kind == "empty":   # no answer at all (just the stop token)
        return ""
    raise ValueError(f"unknown negative kind {kind!r}; known: {list(NEGATIVES)}")


def verifier_examples(task, seed: int, step: int, batch_size: int, ids: JudgeIds,
                      wrong_fraction: float = 0.5,
                      negatives: Sequence[str] = NEGATIVES,
                      padded_fraction: float = 0.0) -> Dict[str, np.ndarray]:
    """Judge rows for task prompts with the gold answer or a wrong one, labelled with the verdict
    token. Wrong answers are drawn uniformly from the `negatives` kinds: `near` (gold +- 1..10),
    `far` (uniform over [0, 10**answer_width - 1]), `empty` (no digits). A judge that never saw
    a kind of wrong answer can rate it highly, and RL finds it (docs/tasks.md: trained on near
    misses only, the judge rated empty answers ~0.9 and the policy learned to answer nothing).
    `padded_fraction` of the answers (right or wrong, not empty) are written zero-padded to the
    task's answer width (`046`), the second surface form of `AdditionTask(padded_fraction=)`; a
    padded gold answer is labelled correct, so the judge learns the equivalence.

    Returns numpy `tokens [B, L]`, `valid [B, L]`, `label [B]` (the yes / no token id) and
    `correct [B]`; deterministic in (seed, step). The task must be `addition` or
    `multiplication` (digit answers)."""
    if len(ids.verdict) != 2:
        raise ValueError("verifier_examples builds yes/no labels (judge mode yes_no)")
    rng = np.random.default_rng([seed, step, 7])
    b = task.make_batch(seed, step, batch_size)
    tok = task.tokenizer
    width = task.target_width + 1  # a wrong answer may have one more digit
    resp = np.full((batch_size, width), tok.pad_id, np.int32)
    keep = np.zeros((batch_size, width), bool)
    correct = rng.random(batch_size) >= wrong_fraction
    for i in range(batch_size):
        gold = int(tok.decode(b["target"][i][: int(b["target_len"][i])]))
        if correct[i]:
            ans = str(gold)
        else:
            kind = negatives[int(rng.integers(len(negatives)))] if len(negatives) > 1 \
                else negatives[0]
            ans = _wrong_answer(rng, gold, kind, 10 ** task.target_width - 1)
        if padded_fraction and ans and rng.random() < padded_fraction:
            ans = ans.zfill(task.target_width)
        correct[i] = bool(ans) and int(ans) == gold
        digits = tok.encode(ans)
        resp[i, :len(digits)] = digits
        keep[i, :len(digits)] = True
    qmask = b["prompt_mask"].astype(bool).copy()
    if ids.bos is not None:  # as JudgeReward: the prompt's own bos is dropped
        rows, first = np.arange(batch_size), qmask.argmax(1)
        qmask[rows, first] &= b["prompt"][rows, first] != ids.bos
    tokens, valid = judge_inputs(ids, jnp.asarray(b["prompt"]), jnp.asarray(qmask),
                                 jnp.asarray(resp), jnp.asarray(keep))
    label = np.where(correct, ids.verdict[0], ids.verdict[1]).astype(np.int32)
    return {"tokens": np.asarray(tokens), "valid": np.asarray(valid), "label": label,
            "correct": correct}


def answer_completions(tok, answers: Sequence, width: int):
    """Completion rows `answer<eos>` for the judge reward: numpy `tokens [n, width]` (0 after
    the eos) and `mask [n, width]` (1 through the eos)."""
    tokens = np.zeros((len(answers), width), np.int32)
    mask = np.zeros((len(answers), width), np.int32)
    for i, a in enumerate(answers):
        ids = tok.encode(str(a), eos=True)
        tokens[i, :len(ids)], mask[i, :len(ids)] = ids, 1
    return tokens, mask


def verdict_loss(model_cfg: ModelConfig, params, batch):
    """Mean cross-entropy of the label token at the last position."""
    logits = forward(model_cfg, params, batch["tokens"], batch["valid"])[:, -1]
    lp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(lp, batch["label"][:, None], axis=1))


@functools.lru_cache(maxsize=4)
def _train_step(model_cfg: ModelConfig, lr: float):
    opt = optax.adamw(lr)

    @jax.jit
    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(lambda p: verdict_loss(model_cfg, p, batch))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return opt, step


def train_verifier(model_cfg: ModelConfig, params, task, ids: JudgeIds, steps: int,
                   batch_size: int = 64, lr: float = 1e-3, seed: int = 0, log_every: int = 0,
                   negatives: Sequence[str] = NEGATIVES, padded_fraction: float = 0.0):
    """`steps` AdamW updates of the verdict loss on `verifier_examples`; returns
    (params, losses [steps])."""
    opt, step = _train_step(model_cfg, float(lr))
    opt_state = opt.init(params)
    losses = []
    for s in range(steps):
        b = verifier_examples(task, seed, s, batch_size, ids, negatives=negatives,
                              padded_fraction=padded_fraction)
        params, opt_state, loss = step(params, opt_state,
                                       {k: b[k] for k in ("tokens", "valid", "label")})
        losses.append(float(loss))
        if log_every and ((s + 1) % log_every == 0 or s + 1 == steps):
            print(f"judge step {s + 1:5d} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    return params, np.asarray(losses)

"""The held-out evaluation of one policy, in two parts shared by a single run
(`evaluate`, below) and a sweep's R runs in one program (rlpt.sweep.run.make_group_eval,
`jax.vmap` of the same function):

- `eval_rewards_fn(model_cfg, reward, cfg)` -> the pure device part `fn(params, rng, batch)`, a
  dict: `greedy`, the greedy answer's reward [B]; `samples`, the rewards of eval.n_samples
  samples at eval.temperature [B * n]; with `eval.self_correction`, `second`, the reward of a
  greedy second attempt after the greedy answer and `algo.layer2_instruction_ids` [B]
  (rlpt.pieces.self_correction; the prompt of MGRPO's layer 2); with `eval.calibration`,
  `confidence`, the greedy answer's confidence [B] (the mean probability of its tokens, eos
  excluded: RLSF's p(top-1), arXiv 2507.21931); for each key k of `eval.greedy_aux`, `aux_k`,
  the reward's aux entry k on the greedy answers [B]. Both decodings use `rng`.
- `eval_metrics(rewards, batch, cfg)` -> the numbers on the host: greedy_acc, unbiased pass@k
  for eval.ks (rlpt.evaluation.metrics), per difficulty label when the batch has them, the
  self-correction rates `sc_*`, and the calibration of the greedy answers (`ece`,
  `confidence`, `confidence_auc`: rlpt.evaluation.metrics.calibration), and `greedy_<k>`, the
  mean of each `eval.greedy_aux` entry over the greedy answers (e.g. `leading_zero`: the share
  written in a task's second surface form).

A run's rng is `PRNGKey(seed + 777)` (`eval_rng(eval_seed(cfg))`) in both callers, so a run in
a sweep is evaluated on the same samples as the same run alone; `seed` is the run's own unless
`eval.seed` names one for every run (common random numbers: the runs of a sweep's seeds are
scored on the same draws, and a pretrained base model's evaluation is the same in all of them).
With `eval.sample_chunk=c` the n samples per prompt are drawn c at a time (chunk i with
`fold_in(rng, i)`; different draws from c = n, the same distribution), so pass@256 fits in memory.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rlpt import distributed
from rlpt.envs.multiturn import task_runner
from rlpt.envs.tool_rollout import evaluate_tool, rollout_kind
from rlpt.errors import UserError
from rlpt.evaluation.metrics import (by_difficulty, calibration, mean_pass_at_k,
                                     self_correction_rates)
from rlpt.pieces.self_correction import self_correction_rewards
from rlpt.sampling import SamplingConfig, sample

SC_BATCH_KEYS = ("prompt", "prompt_mask", "target", "target_len")  # what the sc_* rates read


class EvalSettings(NamedTuple):
    """What the device part reads from a config (hashable: the key of its compiled program)."""
    n_samples: int
    temperature: float
    self_correction: bool
    max_new_tokens: int
    stop_tokens: tuple
    pad_id: int
    instruction_ids: tuple   # algo.layer2_instruction_ids: the second attempt's prompt
    calibration: bool = False
    sample_chunk: int = 0    # draw the n_samples this many at a time (0: all at once)
    greedy_aux: tuple = ()   # aux keys of the reward reported over the greedy answers


def eval_settings(cfg) -> EvalSettings:
    e, s = cfg.eval, cfg.sampling
    return EvalSettings(e.n_samples, e.temperature, bool(e.get("self_correction", False)),
                        s.max_new_tokens, tuple(s.stop_tokens), s.pad_id,
                        tuple(int(i) for i in cfg.algo.get("layer2_instruction_ids", ())),
                        bool(e.get("calibration", False)), int(e.get("sample_chunk", 0)),
                        tuple(e.get("greedy_aux", ())))


def eval_seed(cfg) -> int:
    """The seed of a run's evaluation rng: `eval.seed` when set, else the run's seed."""
    s = cfg.eval.get("seed", None)
    return int(cfg.seed if s is None else s)


def eval_rng(seed: int):
    return jax.random.PRNGKey(seed + 777)


def eval_rewards_fn(model_cfg, reward, cfg):
    """`fn(params, rng, batch) -> {greedy [B], samples [B*n], second [B] (eval.self_correction),
    confidence [B] (eval.calibration)}` (module doc); `reward(tokens, mask, target, target_len)
    -> (r, aux)`. Pure."""
    return _rewards_fn(model_cfg, reward, eval_settings(cfg))


@functools.lru_cache(maxsize=8)
def jitted_eval_rewards(model_cfg, reward, settings: EvalSettings):
    """`jax.jit` of the device part, one per (model, reward, settings) in a process (a run
    evaluates many times)."""
    return jax.jit(_rewards_fn(model_cfg, reward, settings))


def _rewards_fn(model_cfg, reward, st: EvalSettings):
    greedy = SamplingConfig(max_new_tokens=st.max_new_tokens, greedy=True,
                            stop_tokens=st.stop_tokens)
    chunk = st.sample_chunk or st.n_samples
    multi = SamplingConfig(max_new_tokens=st.max_new_tokens, num_samples=chunk,
                           temperature=st.temperature, stop_tokens=st.stop_tokens)
    # the second attempt: greedy_acc's decoding, with sampling.pad_id, which the layer-2
    # prompt's padding uses
    second = SamplingConfig(max_new_tokens=st.max_new_tokens, greedy=True,
                            stop_tokens=st.stop_tokens, pad_id=st.pad_id)

    def fn(params, rng, b):
        rep = lambda x: jnp.repeat(x, st.n_samples, axis=0)
        first = sample(model_cfg, params, b["prompt"], b["prompt_mask"], rng, greedy)
        r_g, aux_g = reward(first.tokens, first.mask, b["target"], b["target_len"])
        if chunk == st.n_samples:
            out = sample(model_cfg, params, b["prompt"], b["prompt_mask"], rng, multi)
            r_s, _ = reward(out.tokens, out.mask, rep(b["target"]), rep(b["target_len"]))
        else:   # chunk i: `chunk` samples per prompt from fold_in(rng, i); [m, B*chunk]
            rep_c = lambda x: jnp.repeat(x, chunk, axis=0)

            def draw(i):
                out = sample(model_cfg, params, b["prompt"], b["prompt_mask"],
                             jax.random.fold_in(rng, i), multi)
                return reward(out.tokens, out.mask, rep_c(b["target"]),
                              rep_c(b["target_len"]))[0]
            m = st.n_samples // chunk
            r_s = jax.lax.map(draw, jnp.arange(m))
            r_s = r_s.reshape(m, -1, chunk).transpose(1, 0, 2).reshape(-1)  # prompt-major
        res = {"greedy": r_g, "samples": r_s}
        for k in st.greedy_aux:
            if k not in aux_g:
                raise UserError(f"config eval.greedy_aux: the task reward has no aux entry "
                                f"{k!r}; it has {sorted(aux_g)}")
            res[f"aux_{k}"] = jnp.asarray(aux_g[k], jnp.float32)
        if st.self_correction:
            sc_batch = {k: b[k] for k in SC_BATCH_KEYS}
            res["second"] = self_correction_rewards(model_cfg, params, sc_batch, reward,
                                                    st.instruction_ids, second, rng,
                                                    first=first)[1]
        if st.calibration:   # p(top-1) of the greedy tokens, at temperature 1 (rlpt.sampling)
            answer = (first.mask > 0) & ~jnp.isin(first.tokens, jnp.asarray(st.stop_tokens))
            n = answer.sum(-1)
            res["confidence"] = jnp.where(
                n > 0, (jnp.exp(first.logprobs) * answer).sum(-1) / jnp.maximum(n, 1), 0.0)
        return res
    return fn


def eval_metrics(rewards, batch, cfg) -> dict:
    """The numbers (module doc) from one run's host copies of `fn`'s rewards."""
    e = cfg.eval
    r_g, r_s = np.asarray(rewards["greedy"]), np.asarray(rewards["samples"])
    correct = r_s.reshape(-1, e.n_samples) > 0.5
    res = {"greedy_acc": float(np.mean(r_g > 0.5))}
    for k in e.ks:
        res[f"pass@{k}"] = mean_pass_at_k(correct, k)
    if "difficulty" in batch:  # tasks with difficulty labels (rlpt.tasks.scratchpad)
        res.update(by_difficulty(r_g, correct, batch["difficulty"], max(e.ks)))
    if "second" in rewards:
        res.update(self_correction_rates(r_g, np.asarray(rewards["second"])))
    if "confidence" in rewards:
        res.update(calibration(np.asarray(rewards["confidence"]), r_g > 0.5))
    for k in e.get("greedy_aux", ()):
        res[f"greedy_{k}"] = float(np.mean(np.asarray(rewards[f"aux_{k}"])))
    return res


def evaluate(model_cfg, params, task, cfg, eval_batch) -> dict:
    """One run's evaluation: greedy accuracy and unbiased pass@k (n = eval.n_samples at
    eval.temperature), per difficulty label, and with `eval.self_correction` the greedy
    self-correction rates `sc_*` (the same program a sweep vmaps); with the tool rollout the
    call rates instead (rlpt.envs.tool_rollout.evaluate_tool); a Python environment's held-out
    episodes with its rubric (`evaluate_env`)."""
    if rollout_kind(cfg) == "tool":
        return evaluate_tool(model_cfg, params, task, cfg, eval_batch, eval_rng(eval_seed(cfg)))
    if hasattr(task, "environment"):   # a Python environment (rlpt.tasks.env_task)
        return evaluate_env(model_cfg, params, task, cfg, eval_batch)
    fn = jitted_eval_rewards(model_cfg, task.reward, eval_settings(cfg))
    rewards = fn(params, eval_rng(eval_seed(cfg)), eval_batch)
    return eval_metrics({k: distributed.fetch(r) for k, r in rewards.items()}, eval_batch, cfg)


def evaluate_env(model_cfg, params, task, cfg, eval_batch) -> dict:
    """Held-out episodes: greedy (`greedy_acc` = share of episodes with reward > 0.5,
    `greedy_reward` the mean reward, `greedy_turns`) and eval.n_samples sampled episodes per
    prompt at eval.temperature (unbiased pass@k over reward > 0.5)."""
    e, rng = cfg.eval, eval_rng(eval_seed(cfg))
    res = {}
    greedy = task_runner(task, model_cfg,
                         SamplingConfig.from_config(cfg.sampling, num_samples=1, greedy=True))
    _, eps, m = greedy.rollout(params, eval_batch, rng)
    r, _ = task.environment.rubric.score(eps, 1)
    res.update(greedy_acc=float(np.mean(r > 0.5)), greedy_reward=float(np.mean(r)),
               greedy_turns=m["env/turns"])
    if e.n_samples > 0:
        multi = task_runner(task, model_cfg, SamplingConfig.from_config(
            cfg.sampling, num_samples=e.n_samples, temperature=e.temperature))
        _, eps, _ = multi.rollout(params, eval_batch, rng)
        r, _ = task.environment.rubric.score(eps, e.n_samples)
        correct = r.reshape(-1, e.n_samples) > 0.5
        for k in e.ks:
            res[f"pass@{k}"] = mean_pass_at_k(correct, k)
    return res

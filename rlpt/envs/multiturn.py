"""Multi-turn rollouts with a Python environment, and the RL step that trains on them.

`EnvRunner.rollout(params, batch, rng)` plays one episode per row (B prompts x G samples):

    prefill the prompts                                   (device, once)
    repeat up to env.max_turns:
        policy turn for every active row                  (device, rlpt.envs.turns.policy_turn)
        fetch the turn's tokens, decode them, call env_response per row, render its messages
        with the chat template                            (host)
        the replies, right-padded to a bucket width       (device, rlpt.envs.turns.env_block)
    compact each row's tokens to the left                 (device)

`env_response` also runs after the last policy turn (so that a game applies the final move); its
messages then end the episode in `completion`, for the rubric, and never reach the model.
Returns an `EnvSampleOutput` (the fields the update reads: environment tokens are in `tokens`
and `valid`, never in `mask`, so they are excluded from the loss and from its normalisation),
the episodes as the rubric reads them (`prompt`, `completion` as chat messages, `answer`,
`state`, `info`), and the rollout's metrics: `env/turns`, `env/errors` (env_response raised or
returned a bad value), `env/capped_turns` (a turn cut at `turn_tokens`), `env/reply_cut` (a reply
longer than the largest bucket, cut), `env/columns` (cache columns the batch used, gaps
included, of sampling.max_new_tokens), `env/out_of_room` (an episode ended because the token
buffer was full), `env/host_ms_per_turn` (Python time between two device programs, for the
whole batch's turn: decoding, env_response, rendering) and `env/host_frac` (the share of the
rollout's wall time spent there: the time the device waits on the host).

`rlpt.env_step.make_env_step(spec, runner)` is the RL step on top: the rollout above, the rubric
in Python, then the same compiled update as every other path (`rlpt.step.update_phase`);
`rlpt.evaluation.rollout.evaluate_env` the held-out evaluation.
"""
import math
import time
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlpt.envs.environment import Chat, Environment
from rlpt.envs.tool_rollout import tool_completion_inputs
from rlpt.envs.turns import TurnPrograms, turn_programs
from rlpt.errors import UserError
from rlpt.sampling import Rollout, transition_ids


class EnvSampleOutput(NamedTuple):
    """`SampleOutput`'s fields (`mask`/`lengths` count policy tokens only), then `valid` and
    `env_mask` as in rlpt.envs.tool_rollout, and the policy turns per episode."""
    tokens: jax.Array
    logprobs: jax.Array
    entropies: jax.Array
    mask: jax.Array
    lengths: jax.Array
    stopped: jax.Array
    valid: jax.Array
    env_mask: jax.Array
    turns: jax.Array


def env_teacher_inputs(batch, out, G: int):
    """Teacher forcing over every real token (policy and environment): `out.valid`, as for the
    calculator's rollout (`tool_completion_inputs`)."""
    return tool_completion_inputs(batch["prompt"], batch["prompt_mask"], out, G)


def _no_device_sample(*_):
    raise UserError("a Python environment's rollout runs on the host between device programs; "
                    "train it with rlpt.env_step.make_env_step (rlpt.train does so for "
                    "an environment task), not the fused step")


ENV_ROLLOUT = Rollout(sample=_no_device_sample, teacher_inputs=env_teacher_inputs,
                      reward_inputs=lambda out: (out.tokens, out.valid + out.env_mask),
                      metrics=lambda out: {
                          "env_token_frac": out.env_mask.sum() / jnp.maximum(out.valid.sum(), 1),
                          "turns": out.turns.astype(jnp.float32).mean()},
                      transitions=lambda out: transition_ids(out.env_mask))


def bucket_width(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= n (n <= max(buckets))."""
    return next(b for b in sorted(buckets) if b >= n)


def env_buckets(max_reply: int) -> tuple:
    """Powers of two from 16 up to `max_reply` (rounded up): one compiled env block each."""
    top = max(16, 1 << math.ceil(math.log2(max(max_reply, 1))))
    return tuple(1 << k for k in range(4, int(math.log2(top)) + 1))


def failed(ep, counts, e: Exception) -> None:
    """An environment error that ends episode `ep`: kept in its state, counted in env/errors."""
    counts["errors"] += 1
    ep["state"].setdefault("errors", []).append(f"{type(e).__name__}: {e}")


class EnvRunner:
    """Plays episodes of `env` with the policy (module doc). `turn_tokens` caps a policy turn,
    `max_reply` an environment reply (longer ones are cut, counted in `env/reply_cut`)."""

    def __init__(self, env: Environment, chat: Chat, model_cfg, scfg, turn_tokens: int,
                 max_reply: int = 64, apply_fn=None):
        if turn_tokens < 1 or turn_tokens > scfg.max_new_tokens:
            raise UserError(f"env.turn_tokens={turn_tokens} must be in 1.."
                            f"sampling.max_new_tokens={scfg.max_new_tokens}")
        self.env, self.chat, self.scfg = env, chat, scfg
        self.buckets = env_buckets(max_reply)
        self.max_reply = self.buckets[-1]
        self.programs = (turn_programs(model_cfg, scfg, int(turn_tokens)) if apply_fn is None
                         else TurnPrograms(model_cfg, scfg, turn_tokens, apply_fn))

    def _respond(self, ep, counts) -> tuple:
        """`env_response` behind its guard: -> (new messages, done)."""
        try:
            out = self.env.env_response(ep["state"], ep["prompt"] + ep["completion"])
            new, done = out
            if not isinstance(new, (list, tuple)) or not all(
                    isinstance(m, dict) and "role" in m and "content" in m for m in new):
                raise TypeError(f"messages must be a list of {{'role', 'content'}} dicts, got "
                                f"{str(new)[:80]}")
            return [dict(m) for m in new], bool(done)
        except Exception as e:   # an environment's bug ends its episode, never the run
            failed(ep, counts, e)
            return [], True

    def rollout(self, params, batch, rng):
        """-> (EnvSampleOutput, episodes, metrics); `batch["row"]` [B] indexes env.dataset."""
        progs, env, chat, G = self.programs, self.env, self.chat, self.scfg.num_samples
        T = self.scfg.max_new_tokens
        t_start = time.perf_counter()
        host = 0.0
        rows = [env.dataset[int(i)] for i in np.asarray(batch["row"])]
        eps = []
        for row in rows:
            for _ in range(G):
                eps.append({"prompt": env.prompt_messages(row), "completion": [],
                            "state": env.initial_state(row), "answer": row.get("answer"),
                            "info": dict(row.get("info") or {})})
        N = len(eps)
        counts = dict(errors=0, capped_turns=0, reply_cut=0, out_of_room=0)
        turns = np.zeros(N, np.int32)
        active = np.ones(N, bool)
        stopped = np.zeros(N, bool)
        cache, st = progs.start(params, batch["prompt"], batch["prompt_mask"])
        col = 0   # st.col, kept on the host
        for turn in range(env.max_turns):
            cache, st, stop_N = progs.turn(params, cache, st, jax.random.fold_in(rng, turn))
            toks, msk, stop_N, end = jax.device_get((st.tokens[:, col:col + progs.turn_tokens],
                                                     st.mask[:, col:col + progs.turn_tokens],
                                                     stop_N, st.col))
            col = int(end)
            t_host = time.perf_counter()
            last_turn = turn == env.max_turns - 1
            replies = {}
            for n in np.flatnonzero(active):
                ep = eps[n]
                ep["completion"].append({"role": "assistant",
                                         "content": chat.text(toks[n][msk[n] > 0])})
                ep["state"]["turn"] = turn + 1
                turns[n], stopped[n] = turn + 1, bool(stop_N[n])
                ep["state"]["stopped"] = bool(stop_N[n])   # at a stop token, not the cap
                counts["capped_turns"] += int(not stop_N[n])
                if env.env_response is None:
                    active[n] = False
                    continue
                history = ep["prompt"] + ep["completion"]
                new, done = self._respond(ep, counts)
                if done or not new or last_turn:   # the last reply is for the rubric only
                    ep["completion"].extend(new)
                    active[n] = False
                    continue
                try:
                    ids = chat.reply_ids(history, new, bool(stop_N[n]), env.tools)
                except Exception as e:   # a message the template cannot render
                    failed(ep, counts, e)
                    active[n] = False
                    continue
                ep["completion"].extend(new)
                if len(ids) > self.max_reply:
                    counts["reply_cut"] += 1
                    ids = ids[:self.max_reply]
                replies[n] = ids
            if not replies:
                host += time.perf_counter() - t_host
                break
            E = bucket_width(max(len(v) for v in replies.values()), self.buckets)
            if col + E > T:   # no room for the replies and another turn
                counts["out_of_room"] += len(replies)
                active[:] = False
                host += time.perf_counter() - t_host
                break
            env_NE = np.full((N, E), self.scfg.pad_id, np.int32)
            env_len = np.zeros(N, np.int32)
            for n, ids in replies.items():
                env_NE[n, :len(ids)], env_len[n] = ids, len(ids)
            st = st._replace(active=jnp.asarray(active))
            host += time.perf_counter() - t_host
            cache, st = progs.env(params, cache, st, jnp.asarray(env_NE), jnp.asarray(env_len))
            col += E
        c = progs.compact(st)
        out = EnvSampleOutput(c["tokens"], c["logprobs"], c["entropies"], c["mask"],
                              c["mask"].sum(axis=1).astype(jnp.int32), jnp.asarray(stopped),
                              c["valid"], c["env_mask"], jnp.asarray(turns))
        wall = time.perf_counter() - t_start
        metrics = {f"env/{k}": float(v) for k, v in counts.items()}
        metrics.update({"env/turns": float(turns.mean()), "env/columns": float(col),
                        "env/host_ms_per_turn": 1e3 * host / (turn + 1),
                        "env/host_frac": host / max(wall, 1e-9)})
        return out, eps, metrics


def task_runner(task, model_cfg, scfg) -> EnvRunner:
    """The runner of an environment task (rlpt.tasks.env_task) for (model, sampling config);
    its programs compile once per shape in the process (`turn_programs`)."""
    return EnvRunner(task.environment, task.chat, model_cfg, scfg, task.turn_tokens,
                     task.max_reply)

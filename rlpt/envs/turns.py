"""The device side of multi-turn rollouts: a conversation continues in ONE KV cache across turns.

Three compiled programs, each built once per shape (no recompile per turn or per step):

- `prefill`: the prompts into slots [0, P) of a cache with room for T more tokens, repeated G
  times (rlpt.sampling.prefill);
- `policy_turn`: up to `turn_tokens` policy tokens for every row still in its episode, written at
  the shared columns `col, col+1, ...`; a row's turn ends at a stop token (e.g. `<|im_end|>`) or
  at the cap. Every token, the stop token included, is fed through the model into its cache slot
  so that what comes next attends to it;
- `env_block(E)`: the environment's reply tokens of every row, right-padded to a bucket width E,
  written at columns `col .. col+E` in one forward over the cached conversation (no re-prefill of
  the history); the row's next-token logits are those at its last reply token.

Columns are shared by all rows, so a row that stopped early in a turn, or whose reply is shorter
than E, leaves invalid columns (`valid` 0): they are masked as attention keys, and positions
count valid tokens only, so each row sees exactly its own contiguous conversation. `compact`
finally moves each row's valid tokens to the left, giving the layout teacher forcing expects
(the same positions and keys, hence the same log-probs as during sampling: tests check it).

State between programs (`TurnState`, device arrays): the per-column records `tokens`,
`logprobs`, `entropies`, `mask` (1 on policy tokens: the loss mask), `valid` (every real token),
`env_mask` (1 on environment tokens), the prompt's key validity, each row's next position, its
next-token logits, `active` (the episode goes on) and the next free column `col`.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import KeyMask, Transformer
from rlpt.sampling import SamplingConfig, draw_token, gumbel_noise, prefill


class TurnState(NamedTuple):
    tokens: jax.Array      # [N, T] int32
    logprobs: jax.Array    # [N, T] float32, 0 off policy tokens
    entropies: jax.Array   # [N, T] float32, 0 off policy tokens
    mask: jax.Array        # [N, T] float32, 1 on policy tokens
    valid: jax.Array       # [N, T] float32, 1 on policy and environment tokens
    env_mask: jax.Array    # [N, T] float32, 1 on environment tokens
    key_valid: jax.Array   # [N, P] bool, the prompt's real tokens
    pos: jax.Array         # [N] int32, the position of the row's next token
    last: jax.Array        # [N, V] float32, the row's next-token logits
    active: jax.Array      # [N] bool, the episode goes on
    col: jax.Array         # [] int32, the next free column


def default_apply(model_cfg: ModelConfig):
    model = Transformer(model_cfg)
    return lambda p, *a: model.apply({"params": p}, *a)


def _write(a, v_NK, col):
    return jax.lax.dynamic_update_slice_in_dim(a, v_NK.astype(a.dtype), col, axis=1)


def start(model_cfg: ModelConfig, scfg: SamplingConfig, params, prompt_BP, prompt_mask_BP,
          apply_fn=None):
    """Prefill: -> (cache, TurnState) with every row active and nothing written."""
    apply_fn = apply_fn or default_apply(model_cfg)
    G, T = scfg.num_samples, scfg.max_new_tokens
    last, cache, plen_N, kvalid_NP = prefill(model_cfg, apply_fn, params, prompt_BP,
                                             prompt_mask_BP, G, T)
    N = last.shape[0]
    z = lambda dt: jnp.zeros((N, T), dt)
    st = TurnState(jnp.full((N, T), scfg.pad_id, jnp.int32), z(jnp.float32), z(jnp.float32),
                   z(jnp.float32), z(jnp.float32), z(jnp.float32), kvalid_NP, plen_N,
                   last.astype(jnp.float32), jnp.ones((N,), bool), jnp.int32(0))
    return cache, st


def policy_turn(model_cfg: ModelConfig, scfg: SamplingConfig, turn_tokens: int, params, cache,
                st: TurnState, rng, apply_fn=None):
    """One policy turn (module doc): -> (cache, state, stopped [N] bool: the row's turn ended at
    a stop token). Draws with the Gumbel noise of `rng` (`fold_in(rng, i)` at turn token i)."""
    apply_fn = apply_fn or default_apply(model_cfg)
    N, T = st.tokens.shape
    P = st.key_valid.shape[1]
    stops = jnp.array(scfg.stop_tokens, jnp.int32)
    noise_at = gumbel_noise(rng, turn_tokens, st.last.shape, scfg)

    def body(carry):
        i, cache, st, stopped = carry
        live = st.active & ~stopped
        drawn, lp, ent = draw_token(st.last, noise_at(i), i, scfg)
        tok = jnp.where(live, drawn, scfg.pad_id)
        c = st.col + i
        put = lambda a, v: _write(a, v[:, None], c)
        livef = live.astype(jnp.float32)
        st = st._replace(tokens=put(st.tokens, tok), logprobs=put(st.logprobs, lp * livef),
                         entropies=put(st.entropies, ent * livef), mask=put(st.mask, livef),
                         valid=put(st.valid, livef))
        stopped = stopped | (live & jnp.isin(tok, stops))
        kv = jnp.concatenate([st.key_valid, st.valid.astype(bool)], axis=1)[:, None, :]
        logits, cache = apply_fn(params, tok[:, None], st.pos[:, None], kv, cache, P + c)
        st = st._replace(last=jnp.where(live[:, None], logits[:, 0].astype(jnp.float32),
                                        st.last),
                         pos=st.pos + live.astype(jnp.int32))
        return i + 1, cache, st, stopped

    def cond(carry):
        i, _, st, stopped = carry
        return (i < turn_tokens) & (st.col + i < T) & jnp.any(st.active & ~stopped)

    i, cache, st, stopped = jax.lax.while_loop(
        cond, body, (jnp.int32(0), cache, st, jnp.zeros((N,), bool)))
    return cache, st._replace(col=st.col + i), stopped


def env_block(model_cfg: ModelConfig, params, cache, st: TurnState, env_NE, env_len_N,
              apply_fn=None):
    """The environment's tokens `env_NE` (row n's first `env_len_N[n]` are real) at columns
    `col .. col+E` in one forward: -> (cache, state). The caller checks `col + E <= T`."""
    apply_fn = apply_fn or default_apply(model_cfg)
    E = env_NE.shape[1]
    P = st.key_valid.shape[1]
    real = jnp.arange(E)[None, :] < env_len_N[:, None]
    realf = real.astype(jnp.float32)
    st = st._replace(tokens=_write(st.tokens, env_NE, st.col),
                     valid=_write(st.valid, realf, st.col),
                     env_mask=_write(st.env_mask, realf, st.col))
    kv = KeyMask(jnp.concatenate([st.key_valid, st.valid.astype(bool)], axis=1), P + st.col)
    pos = st.pos[:, None] + jnp.arange(E)[None, :]
    logits, cache = apply_fn(params, env_NE, pos, kv, cache, P + st.col)
    at = jnp.maximum(env_len_N - 1, 0)[:, None, None]
    last = jnp.take_along_axis(logits, at, axis=1)[:, 0].astype(jnp.float32)
    st = st._replace(last=jnp.where((env_len_N > 0)[:, None], last, st.last),
                     pos=st.pos + env_len_N, col=st.col + E)
    return cache, st


def compact(st: TurnState, pad_id: int = 0):
    """Each row's valid columns moved to the left (stable), the rest `pad_id`: -> dict of the
    [N, T] records (`tokens`, `logprobs`, `entropies`, `mask`, `valid`, `env_mask`)."""
    order = jnp.argsort(st.valid <= 0, axis=1, stable=True)
    take = lambda a: jnp.take_along_axis(a, order, axis=1)
    keep = take(st.valid)
    return {"tokens": jnp.where(keep > 0, take(st.tokens), pad_id), "logprobs": take(st.logprobs),
            "entropies": take(st.entropies), "mask": take(st.mask), "valid": keep,
            "env_mask": take(st.env_mask)}


class TurnPrograms:
    """The jitted programs for one (model, sampling config, turn cap): `start`, `turn`,
    `env(E)` (one compile per bucket width E) and `compact`."""

    def __init__(self, model_cfg: ModelConfig, scfg: SamplingConfig, turn_tokens: int,
                 apply_fn=None):
        self.scfg, self.turn_tokens = scfg, int(turn_tokens)
        self.start = jax.jit(functools.partial(start, model_cfg, scfg, apply_fn=apply_fn))
        self.turn = jax.jit(functools.partial(policy_turn, model_cfg, scfg, self.turn_tokens,
                                              apply_fn=apply_fn), donate_argnums=(1,))
        self.env = jax.jit(functools.partial(env_block, model_cfg, apply_fn=apply_fn),
                           donate_argnums=(1,))
        self.compact = jax.jit(functools.partial(compact, pad_id=scfg.pad_id))


@functools.lru_cache(maxsize=16)
def turn_programs(model_cfg: ModelConfig, scfg: SamplingConfig, turn_tokens: int) -> TurnPrograms:
    """The programs of the policy's own forward, shared by every runner in the process (a
    training run's and its evaluation's runners with the same shapes compile once)."""
    return TurnPrograms(model_cfg, scfg, turn_tokens)

"""On-device batched sampling: prefill + a decode loop with a preallocated KV cache, under jit.

Prompts arrive LEFT-padded to a fixed width P with a mask; each row gets its own positions
(0 at its first real token), so a prompt gives the same tokens and log-probs however it is
padded. The prompt is prefilled once per prompt; its KV cache and last logits are then repeated
G times (rows i*G .. i*G+G-1 are the samples of prompt i), so G samples never recompute it.

Per step the sampler draws from `softmax(logits / temperature)` after optional top-k / top-p
truncation (or takes the argmax when greedy). The returned log-probs and entropies are those of
the UNTRUNCATED tempered distribution `log_softmax(logits / temperature)`, the quantity every
training log-prob (current, old, reference) is computed from, as TRL and verl do; top-k/top-p
only shape which token is drawn. In greedy mode they are computed at temperature 1.

An environment (a tool, rlpt.envs.tool_rollout) plugs into the decode loop through the
`Environment` hook of `decode`: it may write tokens instead of the policy.

The decode loop is a `lax.while_loop` that exits as soon as every row has emitted a stop token
(`loop="while"`, the default) or a fixed-length `lax.scan` (`loop="scan"`); scripts/bench.py
measures both.
"""
import dataclasses
from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp

from rlpt.models.config import ModelConfig
from rlpt.models.transformer import KeyMask, Transformer, init_cache, positions_from_mask


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 16
    num_samples: int = 1              # G completions per prompt
    temperature: float = 1.0
    top_k: int = 0                    # 0 = off
    top_p: float = 1.0                # 1.0 = off
    greedy: bool = False
    stop_tokens: Tuple[int, ...] = (2,)
    min_new_tokens: int = 0           # stop tokens cannot be drawn before this many tokens
    pad_id: int = 0
    loop: str = "while"               # "while" (early exit) or "scan" (fixed length)

    def __post_init__(self):
        if self.loop not in ("while", "scan"):
            raise ValueError(f"sampling.loop={self.loop!r}; expected 'while' or 'scan'")
        if not self.greedy and self.temperature <= 0:
            raise ValueError(f"sampling.temperature={self.temperature} must be > 0 "
                             "(use sampling.greedy=True for argmax decoding)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"sampling.top_p={self.top_p} must be in (0, 1]")
        if self.top_k < 0 or self.max_new_tokens < 1 or self.num_samples < 1:
            raise ValueError("sampling.top_k must be >= 0, max_new_tokens and num_samples >= 1")

    @classmethod
    def from_config(cls, s, **over) -> "SamplingConfig":
        """The config section `s` (cfg.sampling) as a SamplingConfig, `over` replacing fields
        (e.g. `num_samples=1, greedy=True` for a greedy evaluation)."""
        kw = dict(max_new_tokens=s.max_new_tokens, num_samples=s.num_samples,
                  temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                  stop_tokens=tuple(s.stop_tokens), min_new_tokens=s.min_new_tokens,
                  pad_id=s.pad_id, loop=s.loop)
        kw.update(over)
        return cls(**kw)

    @property
    def logprob_temperature(self) -> float:
        return 1.0 if self.greedy else self.temperature


class SampleOutput(NamedTuple):
    tokens: jax.Array      # [N, T] int32, pad_id after the stop token
    logprobs: jax.Array    # [N, T] float32 log-prob of each sampled token (0 where masked)
    entropies: jax.Array   # [N, T] float32 entropy of the tempered distribution (0 where masked)
    mask: jax.Array        # [N, T] float32, 1 on generated tokens incl. the stop token
    lengths: jax.Array     # [N] int32 number of generated tokens (incl. the stop token)
    stopped: jax.Array     # [N] bool, True if the row emitted a stop token (else truncated)


def filter_logits(logits_NV: jax.Array, top_k: int, top_p: float) -> jax.Array:
    """Sets logits outside the top-k set and outside the top-p nucleus to -inf."""
    if top_k and top_k < logits_NV.shape[-1]:
        kth = jax.lax.top_k(logits_NV, top_k)[0][..., -1:]
        logits_NV = jnp.where(logits_NV < kth, -jnp.inf, logits_NV)
    if top_p < 1.0:
        sorted_desc = -jnp.sort(-logits_NV, axis=-1)
        probs = jax.nn.softmax(sorted_desc, axis=-1)
        cum_before = jnp.cumsum(probs, axis=-1) - probs  # mass strictly above each token
        keep = cum_before < top_p                          # always keeps the top token
        threshold = jnp.min(jnp.where(keep, sorted_desc, jnp.inf), axis=-1, keepdims=True)
        logits_NV = jnp.where(logits_NV < threshold, -jnp.inf, logits_NV)
    return logits_NV


# Noise tables up to this many floats (256 MiB) are drawn before the decode loop in one call
# (SmolLM2's W3 rollout, 32 steps x 16 rows x 49,152 ids, is 25M floats: docs/speed.md).
_NOISE_TABLE_MAX = 1 << 26


def gumbel_noise(rng, steps: int, shape, scfg: SamplingConfig):
    """`noise_at(t)`: the Gumbel noise [N, V] of decode step t, `gumbel(fold_in(rng, t))`, so
    `argmax(logits + noise_at(t))` is exactly `jax.random.categorical(fold_in(rng, t), logits)`.

    When the [steps, N, V] table is small it is drawn before the loop in one vectorised call
    and indexed per step: bit-for-bit the same values (test_sampling checks it) without a
    per-step random-number kernel, which on XLA CPU costs tens of microseconds per decode step
    (docs/speed.md). Greedy decoding draws no noise (None)."""
    if scfg.greedy:
        return lambda t: None
    draw = lambda t: jax.random.gumbel(jax.random.fold_in(rng, t), shape, jnp.float32)
    if steps * shape[0] * shape[1] > _NOISE_TABLE_MAX:
        return draw
    table = jax.vmap(draw)(jnp.arange(steps))
    return lambda t: table[t]


def draw_token(logits_NV, noise_NV, t, scfg: SamplingConfig):
    """One sampling step: (token [N], logprob [N], entropy [N]); `noise_NV` from
    `gumbel_noise` (None when greedy)."""
    logp_NV = jax.nn.log_softmax(logits_NV / scfg.logprob_temperature, axis=-1)
    entropy = -jnp.sum(jnp.exp(logp_NV) * logp_NV, axis=-1)
    draw_logits = logits_NV
    if scfg.min_new_tokens > 0:
        stops = jnp.array(scfg.stop_tokens, jnp.int32)
        is_stop = jnp.zeros(logits_NV.shape[-1], bool).at[stops].set(True)
        draw_logits = jnp.where(is_stop & (t < scfg.min_new_tokens), -jnp.inf, draw_logits)
    if scfg.greedy:
        tok = jnp.argmax(draw_logits, axis=-1)
    else:
        filtered = filter_logits(draw_logits / scfg.temperature, scfg.top_k, scfg.top_p)
        tok = jnp.argmax(noise_NV + filtered, axis=-1)  # Gumbel-max: a categorical draw
    tok = tok.astype(jnp.int32)
    return tok, jnp.take_along_axis(logp_NV, tok[:, None], axis=-1)[:, 0], entropy


def prefill(model_cfg: ModelConfig, apply_fn, params, prompt_BP, prompt_mask_BP, G: int, T: int):
    """Runs the prompts once into slots [0, P) of a cache with room for T new tokens, then
    repeats the cache and the last logits G times (rows i*G .. i*G+G-1 belong to prompt i).

    `apply_fn(params, tokens, positions, mask, cache, cache_index) -> (logits, cache)`, `mask`
    a KeyMask (rlpt.models.transformer: causal over key slots, the prompt's pads masked; the
    model's attention builds it per block). An `apply_fn` returning other per-column outputs
    (hidden states: rlpt.logprobs) gets those of the last column instead of the last logits.
    Returns (last logits [N, V], cache, prompt lengths [N], prompt key validity [N, P]).
    """
    B, P = prompt_BP.shape
    valid_BP = prompt_mask_BP.astype(bool)
    cache = init_cache(model_cfg, B, P + T)
    mask = KeyMask(jnp.pad(valid_BP, ((0, 0), (0, T))), 0)  # key slot s <= query column t
    logits, cache = apply_fn(params, prompt_BP, positions_from_mask(valid_BP), mask, cache, 0)
    last_NV = jnp.repeat(logits[:, -1], G, axis=0)
    cache = jax.tree_util.tree_map(lambda c: jnp.repeat(c, G, axis=0), cache)
    prompt_len_N = jnp.repeat(valid_BP.sum(axis=1), G).astype(jnp.int32)
    return last_NV, cache, prompt_len_N, jnp.repeat(valid_BP, G, axis=0)


class Environment(NamedTuple):
    """An environment in the decode loop: the sampler's environment-step hook (a value, never a
    subclass). Per decode step and row, the environment may write the next token itself (a
    tool result) instead of a draw from the policy; it sees every token chosen.

    `init(N) -> state` (a pytree of [N, ...] arrays);
    `pending(state) -> (forced [N] bool, token [N] int32)`: rows whose next token the
    environment writes, and that token;
    `step(state, token [N], sampled [N] bool, forced [N] bool) -> state`: after each decode
    step (`sampled`: a live row drew `token` from the policy; `forced`: the environment wrote it).
    """
    init: callable
    pending: callable
    step: callable


class EnvDecode(NamedTuple):
    """What `decode` adds to a SampleOutput with an environment."""
    valid: jax.Array       # [N, T] float32, 1 on every token of the sequence (policy + env)
    env_mask: jax.Array    # [N, T] float32, 1 on tokens the environment wrote
    env_state: object      # the environment's final state


def decode(model_cfg: ModelConfig, params, prompt_BP: jax.Array, prompt_mask_BP: jax.Array,
           rng: jax.Array, scfg: SamplingConfig, env: Environment = None, apply_fn=None):
    """Samples `scfg.num_samples` completions per prompt; pure, call under jit. Returns
    `(SampleOutput, EnvDecode or None)`.

    Every row decodes one token per loop step into slot `P + t` of the KV cache. Without an
    environment each token is drawn from the policy. With one, a row whose environment has a
    pending token gets that token instead (mask 0, log-prob 0); it is fed through the model at
    the next step like any other token, so the KV cache holds it and later tokens attend to it.
    `mask` and `lengths` then count policy tokens only (the loss mask), `EnvDecode.valid` every
    token (what teacher forcing must use); the stop token ends a row only when the policy drew it.
    `apply_fn(params, tokens, positions, mask, cache, index) -> (logits, cache)` replaces the
    policy's forward (tests pass a scripted policy); `mask` is the prefill's KeyMask, then a
    `[N, 1, S]` bool array per decode step.
    """
    if apply_fn is None:
        model = Transformer(model_cfg)
        apply_fn = lambda p, *a: model.apply({"params": p}, *a)
    B, P = prompt_BP.shape
    G, T = scfg.num_samples, scfg.max_new_tokens
    N, S = B * G, P + T
    last_NV, cache, prompt_len_N, key_valid_NP = prefill(
        model_cfg, apply_fn, params, prompt_BP, prompt_mask_BP, G, T)
    stops = jnp.array(scfg.stop_tokens, jnp.int32)
    slot_S = jnp.arange(S)
    noise_at = gumbel_noise(rng, T, last_NV.shape, scfg)
    zeros = lambda dt: jnp.zeros((N, T), dt)
    st = {"toks": jnp.full((N, T), scfg.pad_id, jnp.int32), "lps": zeros(jnp.float32),
          "ents": zeros(jnp.float32), "msk": zeros(jnp.float32), "done": jnp.zeros((N,), bool)}
    if env is not None:
        st.update(vld=zeros(jnp.float32), envm=zeros(jnp.float32), env=env.init(N))

    def choose(st, t, logits_NV):
        """Token t of every row: the environment's pending token, else a draw."""
        drawn, lp, ent = draw_token(logits_NV, noise_at(t), t, scfg)
        live = ~st["done"]
        s = dict(st)
        col = lambda a, v: jax.lax.dynamic_update_slice_in_dim(a, v[:, None].astype(a.dtype), t, 1)
        if env is None:
            sampled, tok = live, jnp.where(live, drawn, scfg.pad_id)
        else:
            pending, env_tok = env.pending(st["env"])
            forced = live & pending
            sampled = live & ~forced
            tok = jnp.where(forced, env_tok, jnp.where(sampled, drawn, scfg.pad_id))
            s["vld"], s["envm"] = col(st["vld"], live), col(st["envm"], forced)
            s["env"] = env.step(st["env"], tok, sampled, forced)
        s["toks"], s["lps"] = col(st["toks"], tok), col(st["lps"], jnp.where(sampled, lp, 0.0))
        s["ents"], s["msk"] = col(st["ents"], jnp.where(sampled, ent, 0.0)), col(st["msk"], sampled)
        s["done"] = st["done"] | (sampled & jnp.isin(tok, stops))
        return s

    def step(carry, t):
        """Feed token t-1 at slot P+t-1, then choose token t."""
        cache, st = carry
        gen_valid = jnp.broadcast_to(slot_S[P:] <= P + t - 1, (N, T))
        kv_mask = jnp.concatenate([key_valid_NP, gen_valid], axis=1)[:, None, :]
        prev = jax.lax.dynamic_index_in_dim(st["toks"], t - 1, axis=1, keepdims=True)
        pos = (prompt_len_N + t - 1)[:, None]
        logits, cache = apply_fn(params, prev, pos, kv_mask, cache, P + t - 1)
        return cache, choose(st, t, logits[:, 0])

    carry = (cache, choose(st, 0, last_NV))
    if scfg.loop == "scan":
        carry, _ = jax.lax.scan(lambda c, t: (step(c, t), None), carry, jnp.arange(1, T))
    else:
        cond = lambda c: (c[0] < T) & ~jnp.all(c[1][1]["done"])
        _, carry = jax.lax.while_loop(cond, lambda c: (c[0] + 1, step(c[1], c[0])),
                                      (jnp.int32(1), carry))
    s = carry[1]
    out = SampleOutput(s["toks"], s["lps"], s["ents"], s["msk"],
                       s["msk"].sum(axis=1).astype(jnp.int32), s["done"])
    return out, (None if env is None else EnvDecode(s["vld"], s["envm"], s["env"]))


def sample(model_cfg: ModelConfig, params, prompt_BP: jax.Array, prompt_mask_BP: jax.Array,
           rng: jax.Array, scfg: SamplingConfig) -> SampleOutput:
    """Samples `scfg.num_samples` completions per prompt from the policy (`decode` without an
    environment). Pure; call under jit."""
    return decode(model_cfg, params, prompt_BP, prompt_mask_BP, rng, scfg)[0]


def completion_inputs(prompt_BP, prompt_mask_BP, out: SampleOutput, num_samples: int):
    """Teacher-forcing inputs for prompt+completion rows: (tokens [N, P+T], valid [N, P+T])."""
    prompt_NP = jnp.repeat(prompt_BP, num_samples, axis=0)
    pmask_NP = jnp.repeat(prompt_mask_BP, num_samples, axis=0).astype(bool)
    tokens = jnp.concatenate([prompt_NP, out.tokens], axis=1)
    valid = jnp.concatenate([pmask_NP, out.mask.astype(bool)], axis=1)
    return tokens, valid


def transition_ids(env_mask_NT) -> jax.Array:
    """[N, T] int32: the number of environment blocks (runs of 1 in `env_mask`: tool results,
    environment replies) that start at or before each column. A policy token's value is the index
    of its transition, the LLM call it belongs to (0 before the first block)."""
    env = env_mask_NT > 0
    starts = env & ~jnp.pad(env, ((0, 0), (1, 0)))[:, :-1]
    return jnp.cumsum(starts.astype(jnp.int32), axis=-1)


def one_transition(out) -> jax.Array:
    """Every column in transition 0: a single-call rollout."""
    return jnp.zeros(out.mask.shape, jnp.int32)


class Rollout(NamedTuple):
    """How the step gets completions: a value passed to the step, not a subclass.

    `sample(model_cfg, params, batch, rng, scfg) -> out` (a SampleOutput or an extension of it);
    `teacher_inputs(batch, out, G) -> (tokens [N, P+T], valid)` the teacher-forcing rows;
    `reward_inputs(out) -> (tokens, mask)` what the task reward reads; `metrics(out) -> dict`;
    `transitions(out) -> [N, T] int32` the LLM call each completion column belongs to
    (`transition_ids` of the environment blocks; 0 everywhere for a single-call rollout).
    """
    sample: callable
    teacher_inputs: callable
    reward_inputs: callable
    metrics: callable
    transitions: callable = one_transition


def _plain_sample(model_cfg, params, batch, rng, scfg):
    return sample(model_cfg, params, batch["prompt"], batch["prompt_mask"], rng, scfg)


PLAIN_ROLLOUT = Rollout(
    sample=_plain_sample,
    teacher_inputs=lambda batch, out, G: completion_inputs(batch["prompt"], batch["prompt_mask"],
                                                           out, G),
    reward_inputs=lambda out: (out.tokens, out.mask),
    metrics=lambda out: {})

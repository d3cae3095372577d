"""Decoder-only transformer of the Llama / Qwen2 family (Flax Linen).

RMSNorm, rotary position embeddings (half or interleaved layout), grouped-query attention,
SwiGLU MLP, optional QKV bias (Qwen2), optional tied embeddings; float32 or bfloat16 compute
with float32 parameters, norms, softmax and logits.

The model is pure: `Transformer(cfg).apply({"params": params}, tokens_BT, positions_BT,
mask_BTS, cache)` returns `(logits_BTV, new_cache)`. The attention mask is an explicit argument
(True where query t may attend key s) and the KV cache an explicit pytree, so callers (the full
forward, the sampler's prefill and decode) decide causality and padding, and jitted steps stay
pure. Cache layout: `{"k": [...], "v": [...]}`, one `[B, KVH, S, hd]` array per layer (separate
buffers, so a decode step updates each in place; a stacked `[L, ...]` array made XLA copy the
whole cache every step), plus the write offset `cache_index` (a scalar: the slot where the
first of the T new tokens goes, same for every row).

The mask is either that explicit `[B, T, S]` bool array or a `KeyMask(key_valid_BS, offset)`:
the causal mask in factored form (query t sits at key slot `offset + t`), which the full
forward, the prefill and `rlpt.logprobs` pass, so that blockwise attention builds each block's
mask from it and no `[B, T, S]` array exists. Memory options of `ModelConfig` (each equal to the
plain path): `remat` (per-block activation checkpointing), `attention` ("plain" |
"blockwise" | "dot_product", for T > 1; a one-token decode step always runs the plain code),
and `head=False` (the final hidden states instead of the logits, for chunked log-probs).
"""
from typing import Any, Dict, List, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlpt.models.config import ModelConfig

Cache = Dict[str, List[jax.Array]]
_NEG_INF = -1e30  # finite, so a fully masked row (a pad query) gives a uniform row, never NaN


class KeyMask(NamedTuple):
    """The causal attention mask in factored form: query t, written at key slot `offset + t`,
    sees key slot s iff `s <= offset + t` and `key_valid_BS[b, s]`. `offset` is 0 for a full
    forward or a prefill into slot 0, the cache index when queries follow cached keys."""
    key_valid_BS: jax.Array
    offset: Any = 0


def mask_block(mask, q0, Tq: int, k0, Sk: int) -> jax.Array:
    """The `[B, Tq, Sk]` bool block of `mask` (a `[B, T, S]` array or a KeyMask) at queries
    `q0 ..` and keys `k0 ..` (offsets may be traced; the block must lie inside the mask)."""
    if isinstance(mask, KeyMask):
        query_slot = mask.offset + q0 + jnp.arange(Tq)
        causal = (k0 + jnp.arange(Sk))[None, :] <= query_slot[:, None]
        valid = jax.lax.dynamic_slice_in_dim(mask.key_valid_BS.astype(bool), k0, Sk, axis=1)
        return causal[None] & valid[:, None, :]
    rows = jax.lax.dynamic_slice_in_dim(mask, q0, Tq, axis=1)
    return jax.lax.dynamic_slice_in_dim(rows, k0, Sk, axis=2)


def dense_mask(mask, T: int, S: int) -> jax.Array:
    """The whole `[B, T, S]` mask (the plain path). With a static offset the causal part is a
    constant, as the callers' explicit masks were (the compiled plain path stays bit for bit
    what it was)."""
    if isinstance(mask, KeyMask):
        if isinstance(mask.offset, (int, np.integer)):
            causal = np.tril(np.ones((T, S), bool), k=int(mask.offset))
        else:
            causal = jnp.arange(S)[None, :] <= mask.offset + jnp.arange(T)[:, None]
        return causal[None] & mask.key_valid_BS.astype(bool)[:, None, :]
    return mask


def compute_dtype(cfg: ModelConfig):
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


class RMSNorm(nn.Module):
    eps: float
    dtype: Any

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (y * scale).astype(self.dtype)


def rope_inv_freq(hd: int, theta: float, scaling=None) -> np.ndarray:
    """RoPE inverse frequencies [hd/2] (numpy float32, static); with `scaling` = (factor,
    low_freq_factor, high_freq_factor, original_context) the Llama-3 rule: long wavelengths
    divided by factor, short ones kept, the band between interpolated smoothly."""
    inv_freq = (1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float32) / hd))).astype(np.float32)
    if scaling is None:
        return inv_freq
    factor, low, high, ctx = scaling
    wavelen = 2 * np.pi / inv_freq
    scaled = np.where(wavelen > ctx / low, inv_freq / factor, inv_freq)
    smooth = (ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= ctx / high) & (wavelen <= ctx / low)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def rope_tables(positions_BT: jax.Array, num_positions: int, hd: int, theta: float,
                scaling=None):
    """(cos, sin) [B, T, 1, hd/2] of the rotary angles at integer positions < num_positions.

    The angles of every position are tabulated at trace time (numpy: float32 angle
    `position * inv_freq`, cosine and sine in float64 rounded to float32) and looked up, so
    the compiled program has no cos/sin at all: computed in the program, XLA fused them into
    every layer's q and k fusions and recomputed them per element of q and k, in each layer
    and pass (docs/speed.md). `Transformer` passes the token count, or the cache length when
    decoding: positions from `positions_from_mask` or the sampler stay below it. A position
    outside the table gives NaN (and so NaN logits), never a silently wrong angle."""
    angle = np.arange(num_positions, dtype=np.float32)[:, None] * rope_inv_freq(hd, theta, scaling)
    angle = angle.astype(np.float64)
    lookup = lambda table: jnp.take(jnp.asarray(table.astype(np.float32)), positions_BT, axis=0,
                                    mode="fill", fill_value=jnp.nan)[:, :, None, :]
    return lookup(np.cos(angle)), lookup(np.sin(angle))


def rope(x_BTHD: jax.Array, cos_sin, layout: str) -> jax.Array:
    """Rotary embedding (Su et al., arXiv 2104.09864) with the tables of `rope_tables`."""
    hd = x_BTHD.shape[-1]
    cos, sin = cos_sin
    x = x_BTHD.astype(jnp.float32)
    if layout == "half":
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    else:  # interleaved pairs (2i, 2i+1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = jnp.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).reshape(x.shape)
    return out.astype(x_BTHD.dtype)


class Linear(nn.Module):
    """`y = x W (+ b)` exactly as `nn.Dense` computes it (same parameter names, initialisers
    and creation order, so checkpoints, loaders and `init_params` are unchanged), plus the LoRA
    term `(x A) B * cfg.lora_scale` (Hu et al., arXiv 2106.09685) when this layer's parameters
    also hold adapters `lora_a` [in, r] and `lora_b` [r, out] (rlpt.models.lora attaches them
    to the frozen base; without them the layer is the plain projection)."""
    features: int
    use_bias: bool
    dtype: Any
    lora_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features),
                            jnp.float32)
        bias = (self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
                if self.use_bias else None)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        y = jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
        if bias is not None:
            y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
        if self.has_variable("params", "lora_a"):
            a = self.get_variable("params", "lora_a").astype(self.dtype)
            b = self.get_variable("params", "lora_b").astype(self.dtype)
            y = y + jnp.dot(jnp.dot(x, a), b) * jnp.asarray(self.lora_scale, self.dtype)
        return y


def dense(cfg: ModelConfig, features: int, name: str, use_bias: bool = False) -> Linear:
    """A projection of the model (LoRA-capable `Linear`) in the compute dtype."""
    return Linear(features, use_bias, compute_dtype(cfg), cfg.lora_scale, name=name)


def plain_attention(q, k, v, mask_BTS, dt) -> jax.Array:
    """Softmax attention with the whole `[B, KVH, R, T, S]` scores. q: [B, KVH, R, T, hd]
    (R = query heads per KV head), k, v: [B, KVH, S, hd]; returns [B*T, H*hd] in `dt`."""
    B, KVH, R, T, hd = q.shape
    if T == 1:
        # One query per row (a decode step): as broadcast-multiply-reduce, which XLA fuses
        # with the cache read, instead of B*KVH tiny batched matmuls.
        q1 = q[:, :, :, 0, None, :].astype(jnp.float32)             # [B, KVH, R, 1, hd]
        scores = jnp.sum(q1 * k[:, :, None].astype(jnp.float32), -1)[:, :, :, None]
    else:
        scores = jnp.einsum("bgrtd,bgsd->bgrts", q, k, preferred_element_type=jnp.float32)
    scores = jnp.where(mask_BTS[:, None, None, :, :], scores / jnp.sqrt(jnp.float32(hd)),
                       _NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1)
    if T == 1:
        out = jnp.sum(probs[:, :, :, 0, :, None] * v[:, :, None].astype(jnp.float32), -2)
        return out.astype(dt).reshape(B * T, KVH * R * hd)  # [B, KVH, R, hd] -> [B*1, H*hd]
    return jnp.einsum("bgrts,bgsd->btgrd", probs.astype(dt), v).reshape(B * T, KVH * R * hd)


def dot_product_attention(q, k, v, mask_BTS, dt) -> jax.Array:
    """`jax.nn.dot_product_attention` (implementation=None: JAX picks; in JAX 0.10 that is its
    XLA implementation everywhere, cuDNN only when asked for by name), grouped-query heads
    passed as they are. Same arguments and result as `plain_attention`."""
    B, KVH, R, T, hd = q.shape
    q_BTHD = q.transpose(0, 3, 1, 2, 4).reshape(B, T, KVH * R, hd)  # head g*R + r, as plain
    out = jax.nn.dot_product_attention(q_BTHD, k.transpose(0, 2, 1, 3).astype(dt),
                                       v.transpose(0, 2, 1, 3).astype(dt),
                                       mask=mask_BTS[:, None], implementation=None)
    return out.astype(dt).reshape(B * T, KVH * R * hd)


def _pad_axis(x, axis: int, extra: int, value=0):
    if not extra:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths, constant_values=value)


def _online_softmax_step(q_blk, mask, dt, q0, block: int, S: int):
    """One key block of the online softmax (arXiv 2112.05682, sec. 3; arXiv 2205.14135,
    Algorithm 1): carry (running max m, running sum l, unnormalised output acc) of the query
    block `q_blk` [B, KVH, R, block, hd] at queries `q0 ..`. Masked keys score -1e30 as in the
    plain path (a fully masked row averages every key, never NaN); key slots past S (padding)
    score -inf and weigh nothing. m is a stabiliser the result does not depend on, so it
    carries no gradient."""
    hd = q_blk.shape[-1]

    def step(carry, xs):
        m, l, acc = carry
        j, k_blk, v_blk = xs
        k0 = j * block
        s = jnp.einsum("bgrtd,bgsd->bgrts", q_blk, k_blk, preferred_element_type=jnp.float32)
        keep = mask_block(mask, q0, block, k0, block)[:, None, None]
        s = jnp.where(keep, s / jnp.sqrt(jnp.float32(hd)), _NEG_INF)
        if S % block:
            s = jnp.where(k0 + jnp.arange(block) < S, s, -jnp.inf)
        m_new = jax.lax.stop_gradient(jnp.maximum(m, jnp.max(s, axis=-1)))
        p = jnp.exp(s - m_new[..., None])
        corr = jnp.exp(m - m_new)
        l = l * corr + jnp.sum(p, axis=-1)
        pv = jnp.einsum("bgrts,bgsd->bgrtd", p.astype(dt), v_blk,
                        preferred_element_type=jnp.float32)
        return (m_new, l, acc * corr[..., None] + pv), None
    return step


def blockwise_attention(q, k, v, mask, block: int, dt) -> jax.Array:
    """Attention that never holds `[T, S]` scores: queries in blocks of `block`, each an online
    softmax over key blocks of `block` (memory-efficient attention, Rabe & Staats, arXiv
    2112.05682; FlashAttention's tiling, Dao et al., arXiv 2205.14135), in `lax.map` / `lax.scan`.
    Each query block and each key step is under `jax.checkpoint`, so the backward pass recomputes
    a block's scores instead of storing them: it keeps the inputs, the output and, while one
    query block is differentiated, its per-key-block carries. `mask` is a `[B, T, S]` array or a
    KeyMask (then no `[B, T, S]` mask exists either: each block's is built from key validity and
    positions). Lengths that `block` does not divide are padded. Same arguments and result as
    `plain_attention`."""
    B, KVH, R, T, hd = q.shape
    S = k.shape[2]
    nq, nk = -(-T // block), -(-S // block)
    q = _pad_axis(q, 3, nq * block - T)
    k, v = _pad_axis(k, 2, nk * block - S), _pad_axis(v, 2, nk * block - S)
    if isinstance(mask, KeyMask):
        mask = KeyMask(_pad_axis(mask.key_valid_BS.astype(bool), 1, nk * block - S, False),
                       mask.offset)
    else:
        mask = _pad_axis(_pad_axis(mask, 1, nq * block - T, False), 2, nk * block - S, False)
    k_blocks = k.reshape(B, KVH, nk, block, hd).transpose(2, 0, 1, 3, 4)
    v_blocks = v.reshape(B, KVH, nk, block, hd).transpose(2, 0, 1, 3, 4)
    q_blocks = q.reshape(B, KVH, R, nq, block, hd).transpose(3, 0, 1, 2, 4, 5)

    @jax.checkpoint
    def query_block(xs):
        i, q_blk = xs
        step = _online_softmax_step(q_blk, mask, dt, i * block, block, S)
        shape = (B, KVH, R, block)
        init = (jnp.full(shape, -jnp.inf), jnp.zeros(shape), jnp.zeros(shape + (hd,)))
        (_, l, acc), _ = jax.lax.scan(jax.checkpoint(step), init,
                                      (jnp.arange(nk), k_blocks, v_blocks))
        return (acc / l[..., None]).astype(dt)

    out = jax.lax.map(query_block, (jnp.arange(nq), q_blocks))   # [nq, B, KVH, R, block, hd]
    out = out.transpose(1, 0, 4, 2, 3, 5).reshape(B, nq * block, KVH * R * hd)
    return out[:, :T].reshape(B * T, KVH * R * hd)


def attention_core(cfg: ModelConfig, q, k, v, mask) -> jax.Array:
    """The attention of `cfg.attention` for T > 1 queries (a decode step, T == 1, and keys no
    longer than `cfg.attention_block` under "blockwise", run the plain path)."""
    dt, T, S = compute_dtype(cfg), q.shape[3], k.shape[2]
    if T > 1 and cfg.attention == "blockwise" and S > cfg.attention_block:
        return blockwise_attention(q, k, v, mask, cfg.attention_block, dt)
    if T > 1 and cfg.attention == "dot_product":
        return dot_product_attention(q, k, v, dense_mask(mask, T, S), dt)
    return plain_attention(q, k, v, dense_mask(mask, T, S), dt)


class Attention(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x_ND, cos_sin, mask, cache_kv=None, cache_index=None):
        """x_ND: the B*T rows of the batch flattened (see Transformer); cos_sin: `rope_tables`;
        mask: a `[B, T, S]` bool array or a KeyMask."""
        cfg, dt = self.cfg, compute_dtype(self.cfg)
        B, T = cos_sin[0].shape[:2]
        H, KVH, hd = cfg.n_heads, cfg.n_kv_heads, cfg.hd

        def proj(name, n_heads):
            return dense(cfg, n_heads * hd, name, cfg.qkv_bias)(x_ND).reshape(B, T, n_heads, hd)

        q = rope(proj("q", H), cos_sin, cfg.rope_layout)
        k = rope(proj("k", KVH), cos_sin, cfg.rope_layout)
        v = proj("v", KVH)
        # Heads before positions ([B, KVH, S, hd]): the cache is read by the attention dots in
        # its stored layout, so a decode step never transposes (copies) the whole cache.
        k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
        new_kv = None
        if cache_kv is not None:
            ck, cv = cache_kv
            ck = jax.lax.dynamic_update_slice_in_dim(ck, k.astype(ck.dtype), cache_index, axis=2)
            cv = jax.lax.dynamic_update_slice_in_dim(cv, v.astype(cv.dtype), cache_index, axis=2)
            new_kv = (ck, cv)
            k, v = ck.astype(dt), cv.astype(dt)
        q = q.reshape(B, T, KVH, H // KVH, hd).transpose(0, 2, 3, 1, 4)  # [B, KVH, R, T, hd]
        out = dense(cfg, cfg.d_model, "o")(attention_core(cfg, q, k, v, mask))
        return out, new_kv


class MLP(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x):
        c = self.cfg
        h = nn.silu(dense(c, c.d_ff, "gate")(x)) * dense(c, c.d_ff, "up")(x)
        return dense(c, c.d_model, "down")(h)


class Block(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x, cos_sin, mask, cache_kv=None, cache_index=None):
        dt = compute_dtype(self.cfg)
        h, new_kv = Attention(self.cfg, name="attn")(
            RMSNorm(self.cfg.rms_eps, dt, name="attn_norm")(x), cos_sin, mask,
            cache_kv, cache_index)
        x = x + h
        x = x + MLP(self.cfg, name="mlp")(RMSNorm(self.cfg.rms_eps, dt, name="mlp_norm")(x))
        return x, new_kv


def block_class(cfg: ModelConfig, T: int):
    """`Block`, or `Block` under `nn.remat` (activation checkpointing, Chen et al., arXiv
    1604.06174) when `cfg.remat` asks for it: "block" saves nothing but the block's input (the
    backward pass reruns its forward), a `jax.checkpoint_policies` name saves what that policy
    saves. A one-token decode step (T == 1, never differentiated) runs the plain Block. Every
    argument of a Block is an array, a pytree of arrays or None, so none is static."""
    if cfg.remat == "none" or T == 1:
        return Block
    policy = None if cfg.remat == "block" else getattr(jax.checkpoint_policies, cfg.remat)
    return nn.remat(Block, policy=policy)


def unembedding(cfg: ModelConfig, params) -> jax.Array:
    """The output projection as a `[V, D]` float32 matrix: the embedding when tied, else the
    transposed `lm_head` kernel; `logits = h @ unembedding.T` in the compute dtype."""
    if cfg.tied_embeddings:
        return params["embed"]["embedding"]
    return params["lm_head"]["kernel"].T


class Transformer(nn.Module):
    """The decoder. See the module docstring for the calling convention; `head=False` returns
    `(hidden [B, T, D], new_cache)`, the final (normed) hidden states without the logits."""
    cfg: ModelConfig

    @nn.compact
    def __call__(self, tokens_BT, positions_BT, mask, cache: Optional[Cache] = None,
                 cache_index=None, return_hidden: bool = False, head: bool = True):
        cfg, dt = self.cfg, compute_dtype(self.cfg)
        embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=dt, param_dtype=jnp.float32,
                         embedding_init=nn.initializers.normal(0.02), name="embed")
        B, T = tokens_BT.shape
        # Activations are [B*T, D] between the attention cores: 2-D matmuls let XLA compute the
        # weight gradients without transposing 3-D activations (W1 benchmark model, fwd+bwd on
        # the 2-core CPU: 0.50 s with [B, T, D], 0.42 s with [B*T, D]; docs/speed.md).
        x = embed(tokens_BT).reshape(B * T, cfg.d_model)
        num_positions = T if cache is None else max(T, cache["k"][0].shape[2])
        cos_sin = rope_tables(positions_BT, num_positions, cfg.hd, cfg.rope_theta,
                              cfg.rope_scaling)
        new_k, new_v = [], []
        block = block_class(cfg, T)
        for i in range(cfg.n_layers):
            layer_kv = None if cache is None else (cache["k"][i], cache["v"][i])
            x, kv = block(cfg, name=f"layer_{i}")(x, cos_sin, mask, layer_kv, cache_index)
            if kv is not None:
                new_k.append(kv[0])
                new_v.append(kv[1])
        x = RMSNorm(cfg.rms_eps, dt, name="final_norm")(x)
        new_cache = None if cache is None else {"k": new_k, "v": new_v}
        if not head:
            return x.reshape(B, T, -1), new_cache
        if cfg.tied_embeddings:
            logits = embed.attend(x)
        else:
            logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=dt, param_dtype=jnp.float32,
                              name="lm_head")(x)
        logits = logits.astype(jnp.float32).reshape(B, T, -1)
        x = x.reshape(B, T, -1)
        if return_hidden:
            return logits, new_cache, x
        return logits, new_cache


def init_params(cfg: ModelConfig, rng: jax.Array) -> Dict:
    """Random parameters (a plain nested dict of float32 arrays). `lazy_init` runs only the
    initialisers, not a forward pass on a dummy input: the same arrays bit for bit as `init`,
    without compiling the forward's ops one by one (about 2 s of a first run on CPU)."""
    tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    mask = jax.ShapeDtypeStruct((1, 1, 1), bool)
    return Transformer(cfg).lazy_init(rng, tokens, tokens, mask)["params"]


def causal_mask(valid_BT: jax.Array) -> jax.Array:
    """[B, T, T] mask: query t sees key s iff s <= t and token s is valid (not padding)."""
    T = valid_BT.shape[1]
    tri = jnp.tril(jnp.ones((T, T), bool))
    return tri[None] & valid_BT[:, None, :].astype(bool)


def positions_from_mask(valid_BT: jax.Array) -> jax.Array:
    """Per-row positions for left-padded rows: 0 at the first real token (pads get 0)."""
    return jnp.maximum(jnp.cumsum(valid_BT.astype(jnp.int32), axis=1) - 1, 0)


def forward(cfg: ModelConfig, params, tokens_BT, valid_BT=None, return_hidden=False):
    """Full causal forward over (possibly left-padded) rows: logits [B, T, V] in float32."""
    if valid_BT is None:
        valid_BT = jnp.ones(tokens_BT.shape, bool)
    out = Transformer(cfg).apply({"params": params}, tokens_BT, positions_from_mask(valid_BT),
                                 KeyMask(valid_BT.astype(bool)), return_hidden=return_hidden)
    return (out[0], out[2]) if return_hidden else out[0]


def forward_hidden(cfg: ModelConfig, params, tokens_BT, valid_BT=None):
    """`forward`'s final (normed) hidden states [B, T, D] in the compute dtype, without the LM
    head: the logits are `hidden @ unembedding(cfg, params).T` (rlpt.logprobs chunks them)."""
    if valid_BT is None:
        valid_BT = jnp.ones(tokens_BT.shape, bool)
    return Transformer(cfg).apply({"params": params}, tokens_BT, positions_from_mask(valid_BT),
                                  KeyMask(valid_BT.astype(bool)), head=False)[0]


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=None) -> Cache:
    """Zeroed KV cache `{"k", "v": [one [B, KVH, S, hd] array per layer]}` in the compute dtype."""
    dtype = dtype or compute_dtype(cfg)
    shape = (batch, cfg.n_kv_heads, length, cfg.hd)
    return {name: [jnp.zeros(shape, dtype) for _ in range(cfg.n_layers)] for name in ("k", "v")}


def token_logprobs(logits_BTV: jax.Array, targets_BT: jax.Array, temperature: float = 1.0):
    """log softmax(logits / temperature) at the target ids, float32 [B, T]."""
    logp = jax.nn.log_softmax(logits_BTV.astype(jnp.float32) / temperature, axis=-1)
    return jnp.take_along_axis(logp, targets_BT[..., None], axis=-1)[..., 0]

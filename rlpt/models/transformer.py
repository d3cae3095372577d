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
"""
from typing import Any, Dict, List, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlpt.models.config import ModelConfig

Cache = Dict[str, List[jax.Array]]
_NEG_INF = -1e30  # finite, so a fully masked row (a pad query) gives a uniform row, never NaN


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


class Attention(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x_ND, cos_sin, mask_BTS, cache_kv=None, cache_index=None):
        """x_ND: the B*T rows of the batch flattened (see Transformer); cos_sin: `rope_tables`."""
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
            out = out.astype(dt).reshape(B * T, H * hd)       # [B, KVH, R, hd] -> [B*1, H*hd]
        else:
            out = jnp.einsum("bgrts,bgsd->btgrd", probs.astype(dt), v).reshape(B * T, H * hd)
        out = dense(cfg, cfg.d_model, "o")(out)
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
    def __call__(self, x, cos_sin, mask_BTS, cache_kv=None, cache_index=None):
        dt = compute_dtype(self.cfg)
        h, new_kv = Attention(self.cfg, name="attn")(
            RMSNorm(self.cfg.rms_eps, dt, name="attn_norm")(x), cos_sin, mask_BTS,
            cache_kv, cache_index)
        x = x + h
        x = x + MLP(self.cfg, name="mlp")(RMSNorm(self.cfg.rms_eps, dt, name="mlp_norm")(x))
        return x, new_kv


class Transformer(nn.Module):
    """The decoder. See the module docstring for the calling convention."""
    cfg: ModelConfig

    @nn.compact
    def __call__(self, tokens_BT, positions_BT, mask_BTS, cache: Optional[Cache] = None,
                 cache_index=None, return_hidden: bool = False):
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
        for i in range(cfg.n_layers):
            layer_kv = None if cache is None else (cache["k"][i], cache["v"][i])
            x, kv = Block(cfg, name=f"layer_{i}")(x, cos_sin, mask_BTS, layer_kv, cache_index)
            if kv is not None:
                new_k.append(kv[0])
                new_v.append(kv[1])
        x = RMSNorm(cfg.rms_eps, dt, name="final_norm")(x)
        if cfg.tied_embeddings:
            logits = embed.attend(x)
        else:
            logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=dt, param_dtype=jnp.float32,
                              name="lm_head")(x)
        logits = logits.astype(jnp.float32).reshape(B, T, -1)
        x = x.reshape(B, T, -1)
        new_cache = None if cache is None else {"k": new_k, "v": new_v}
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
                                 causal_mask(valid_BT), return_hidden=return_hidden)
    return (out[0], out[2]) if return_hidden else out[0]


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=None) -> Cache:
    """Zeroed KV cache `{"k", "v": [one [B, KVH, S, hd] array per layer]}` in the compute dtype."""
    dtype = dtype or compute_dtype(cfg)
    shape = (batch, cfg.n_kv_heads, length, cfg.hd)
    return {name: [jnp.zeros(shape, dtype) for _ in range(cfg.n_layers)] for name in ("k", "v")}


def token_logprobs(logits_BTV: jax.Array, targets_BT: jax.Array, temperature: float = 1.0):
    """log softmax(logits / temperature) at the target ids, float32 [B, T]."""
    logp = jax.nn.log_softmax(logits_BTV.astype(jnp.float32) / temperature, axis=-1)
    return jnp.take_along_axis(logp, targets_BT[..., None], axis=-1)[..., 0]

"""GGUF checkpoints (llama.cpp's file format), read with the `gguf` package (llama.cpp's own
Python reader).

A GGUF file holds key/value metadata (architecture sizes, the tokenizer) and named tensors,
each in one of ggml's types: F32/F16/BF16 or a block quantisation (Q4_0, Q4_1, Q8_0, the K-quants,
the IQ types ...). `load_gguf` de-quantises every tensor with `gguf.quants.dequantize` to float32
and maps the Llama-family names onto rlpt's parameter tree:

    token_embd.weight           embed.embedding            [V, D]
    output_norm.weight          final_norm.scale           [D]
    output.weight               lm_head.kernel (transposed; absent = tied embeddings)
    blk.i.attn_norm.weight      layer_i.attn_norm.scale
    blk.i.attn_{q,k,v}.weight   layer_i.attn.{q,k,v}.kernel (transposed; q, k un-permuted)
    blk.i.attn_{q,k,v}.bias     layer_i.attn.{q,k,v}.bias   (qwen2)
    blk.i.attn_output.weight    layer_i.attn.o.kernel (transposed)
    blk.i.ffn_norm.weight       layer_i.mlp_norm.scale
    blk.i.ffn_{gate,up,down}.weight  layer_i.mlp.{gate,up,down}.kernel (transposed)

GGUF lists a tensor's dimensions innermost first, so a matrix `y = W x` of shape [out, in] reads
back from the reader as a numpy [out, in] array, as HF stores it; rlpt's Dense kernels are
[in, out], hence the transposes.

Rotary layout. For `llama` files llama.cpp's converter permutes the rows of the Q and K
projections of each head so that its rotary kernel, which rotates consecutive pairs
(x[2i], x[2i+1]), computes what HF's "rotate half" computes on (x[i], x[i + hd/2]):
HF row `j * hd/2 + i` of a head (j in {0, 1}, i < hd/2) is stored at row `2i + j`.
`unpermute_qk` moves every row back, so the model runs with rope_layout "half" (the HF layout,
which `rlpt.models.loaders.save_hf_checkpoint` and `rlpt.export` need). `qwen2` files are not
permuted (llama.cpp runs Qwen2 with the rotate-half kernel).

Bad files fail with a one-line ValueError naming the file: truncated or corrupt, an
architecture other than llama/qwen2, a tensor type `gguf` cannot de-quantise, metadata that
disagrees with the tensors, missing or left-over tensors.
"""
import os
from typing import Any

import numpy as np

from rlpt.errors import UserError
from rlpt.models.config import ModelConfig

ARCHITECTURES = {"llama": {"permuted_qk": True, "qkv_bias": False},
                 "qwen2": {"permuted_qk": False, "qkv_bias": True}}
_REQUIRED = object()


class GGUFFile:
    """An open GGUF file: typed metadata access and de-quantised tensors, errors naming it."""

    def __init__(self, path: str):
        from rlpt.models.loaders import MissingFileError
        if not os.path.isfile(path):
            raise MissingFileError(f"{path}: file not found")
        self.path = path
        try:
            from gguf import GGUFReader
            self.reader = GGUFReader(path)
        except ImportError:
            raise ImportError("reading GGUF files needs the `gguf` package (pip install gguf)"
                              ) from None
        except Exception as e:  # noqa: BLE001 - numpy/struct errors from a garbled file
            why = (str(e).splitlines() or [type(e).__name__])[0]
            raise UserError(f"{path}: not a readable GGUF file ({os.path.getsize(path)} bytes; "
                            f"{type(e).__name__}: {why}); truncated or corrupt?") from None
        self.tensors = {t.name: t for t in self.reader.tensors}

    def get(self, key: str, default: Any = _REQUIRED) -> Any:
        """The metadata value at `key` (a str, number, bool or list); `default` when absent
        (ValueError naming the file and key if there is no default)."""
        field = self.reader.fields.get(key)
        if field is None:
            if default is _REQUIRED:
                raise UserError(f"{self.path}: metadata key {key!r} missing")
            return default
        try:
            return field.contents()
        except (UnicodeDecodeError, IndexError, ValueError) as e:
            raise UserError(f"{self.path}: metadata key {key!r} is corrupt ({e})") from None

    def positive_int(self, key: str, default: Any = _REQUIRED) -> int:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise UserError(f"{self.path}: metadata {key}={v!r} is not a positive integer")
        return v

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` de-quantised to a float32 numpy array (dimensions outermost first)."""
        from gguf import quants
        t = self.tensors[name]
        try:
            out = quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError:
            raise UserError(f"{self.path}: tensor {name!r} has type {t.tensor_type.name}, which "
                            "the gguf package cannot de-quantise") from None
        if not np.issubdtype(out.dtype, np.floating):
            raise UserError(f"{self.path}: tensor {name!r} has integer type "
                            f"{t.tensor_type.name}; expected float or quantised weights")
        return np.array(out, np.float32)  # a copy: never a view of the memory-mapped file


def gguf_model_config(f: GGUFFile, dtype: str = "float32") -> ModelConfig:
    """ModelConfig from the metadata of an open GGUF file (module doc for what is supported)."""
    arch = f.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise UserError(f"{f.path}: architecture {arch!r} is not supported; known: "
                        f"{sorted(ARCHITECTURES)}")
    k = lambda name: f"{arch}.{name}"
    d_model = f.positive_int(k("embedding_length"))
    n_heads = f.positive_int(k("attention.head_count"))
    n_kv = f.positive_int(k("attention.head_count_kv"), n_heads)
    head_dim = f.positive_int(k("attention.key_length"), d_model // n_heads)
    if f.get(k("attention.value_length"), head_dim) != head_dim:
        raise UserError(f"{f.path}: attention.value_length differs from key_length {head_dim}")
    if f.get(k("rope.dimension_count"), head_dim) != head_dim:
        raise UserError(f"{f.path}: rope.dimension_count={f.get(k('rope.dimension_count'))} "
                        f"differs from the head size {head_dim} (partial rotary is not supported)")
    scaling = f.get(k("rope.scaling.type"), "none")
    if scaling != "none" or "rope_freqs.weight" in f.tensors:
        raise UserError(f"{f.path}: RoPE scaling ({scaling!r}, rope_freqs tensor: "
                        f"{'rope_freqs.weight' in f.tensors}) is not supported for GGUF files")
    if "token_embd.weight" not in f.tensors:
        raise UserError(f"{f.path}: tensor 'token_embd.weight' missing")
    rows = int(f.tensors["token_embd.weight"].shape[-1])  # GGUF shape: innermost first
    vocab = f.positive_int(k("vocab_size"), rows)
    if vocab != rows:
        raise UserError(f"{f.path}: {arch}.vocab_size={vocab} but token_embd.weight has {rows} "
                        "rows")
    n_tokens = len(f.reader.fields["tokenizer.ggml.tokens"].data) \
        if "tokenizer.ggml.tokens" in f.reader.fields else 0
    if n_tokens > vocab:
        raise UserError(f"{f.path}: the tokenizer has {n_tokens} tokens but the model's "
                        f"vocabulary has {vocab} rows: tokenizer and model do not match")
    try:
        return ModelConfig(
            vocab_size=vocab, d_model=d_model, n_layers=f.positive_int(k("block_count")),
            n_heads=n_heads, n_kv_heads=n_kv, d_ff=f.positive_int(k("feed_forward_length")),
            head_dim=head_dim if head_dim != d_model // n_heads else None,
            rms_eps=_f32(f.get(k("attention.layer_norm_rms_epsilon"))),
            rope_theta=_f32(f.get(k("rope.freq_base"), 10000.0)), rope_layout="half",
            qkv_bias=ARCHITECTURES[arch]["qkv_bias"],
            tied_embeddings="output.weight" not in f.tensors, dtype=dtype,
            max_seq_len=f.positive_int(k("context_length"), 2048))
    except (TypeError, ValueError) as e:
        raise UserError(f"{f.path}: {e}") from None


def _f32(v) -> float:
    """A float32 metadata value as the shortest decimal that rounds to it (1e-05, not
    9.9999997e-06), so configs written from it read as the original checkpoint's."""
    return float(str(np.float32(v)))


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undoes llama.cpp's Q/K row permutation (module doc): [n_heads * hd, ...] rows, GGUF
    order (pairs) -> HF order (halves)."""
    hd = w.shape[0] // n_heads
    return w.reshape(n_heads, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """The permutation llama.cpp's converter applies (HF order -> GGUF order); the inverse of
    `unpermute_qk`. For writing GGUF files (tests)."""
    hd = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> numpy shape ([out, in] for matrices) that `cfg` implies."""
    D, F, V, hd = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.hd
    q, kv = cfg.n_heads * hd, cfg.n_kv_heads * hd
    out = {"token_embd.weight": (V, D), "output_norm.weight": (D,), "output.weight": (V, D)}
    layer = {"attn_norm.weight": (D,), "attn_q.weight": (q, D), "attn_k.weight": (kv, D),
             "attn_v.weight": (kv, D), "attn_output.weight": (D, q), "attn_q.bias": (q,),
             "attn_k.bias": (kv,), "attn_v.bias": (kv,), "ffn_norm.weight": (D,),
             "ffn_gate.weight": (F, D), "ffn_up.weight": (F, D), "ffn_down.weight": (D, F)}
    for i in range(cfg.n_layers):
        out.update({f"blk.{i}.{k}": v for k, v in layer.items()})
    return out


def load_gguf(path: str, dtype: str = "float32") -> tuple[ModelConfig, dict]:
    """Loads a Llama / Qwen2 GGUF file: `(ModelConfig, params)` with float32 params (module doc);
    `dtype` is the compute dtype of the returned config."""
    f = GGUFFile(path)
    cfg = gguf_model_config(f, dtype)
    permuted = ARCHITECTURES[f.get("general.architecture")]["permuted_qk"]
    shapes, left = _expected_shapes(cfg), set(f.tensors)

    def take(name, heads=None):
        if name not in f.tensors:
            raise UserError(f"{path}: tensor {name!r} missing (metadata says "
                            f"{cfg.n_layers} layers, qkv bias {cfg.qkv_bias})")
        w = f.tensor(name)
        if w.shape != shapes[name]:
            raise UserError(f"{path}: tensor {name!r} has shape {w.shape}, but the metadata "
                            f"implies {shapes[name]}")
        left.discard(name)
        return unpermute_qk(w, heads) if heads and permuted else w

    params = {"embed": {"embedding": take("token_embd.weight")},
              "final_norm": {"scale": take("output_norm.weight")}}
    heads = {"q": cfg.n_heads, "k": cfg.n_kv_heads, "v": None}
    for i in range(cfg.n_layers):
        pre = f"blk.{i}."
        attn = {n: {"kernel": take(f"{pre}attn_{n}.weight", heads[n]).T} for n in "qkv"}
        if cfg.qkv_bias:
            for n in "qkv":
                attn[n]["bias"] = take(f"{pre}attn_{n}.bias", heads[n])
        attn["o"] = {"kernel": take(pre + "attn_output.weight").T}
        params[f"layer_{i}"] = {
            "attn": attn, "attn_norm": {"scale": take(pre + "attn_norm.weight")},
            "mlp_norm": {"scale": take(pre + "ffn_norm.weight")},
            "mlp": {n: {"kernel": take(f"{pre}ffn_{n}.weight").T} for n in ("gate", "up", "down")}}
    if not cfg.tied_embeddings:
        params["lm_head"] = {"kernel": take("output.weight").T}
    if left:
        raise UserError(f"{path}: unused tensors {sorted(left)[:5]} (an architecture variant "
                        f"rlpt does not implement?)")
    return cfg, params

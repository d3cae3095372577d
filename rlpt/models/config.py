"""Model configuration and presets (tiny CPU models up to real Qwen2.5 / Llama-3.2 shapes)."""
import dataclasses
from typing import Optional, Tuple

import jax

# `ModelConfig.remat`: "none", "block" (each block under jax.checkpoint, saving only its input),
# or a policy of jax.checkpoint_policies that is itself a policy (not a factory taking names).
REMAT_POLICIES = tuple(name for name in (
    "nothing_saveable", "dots_saveable", "checkpoint_dots", "dots_with_no_batch_dims_saveable",
    "checkpoint_dots_with_no_batch_dims", "everything_saveable")
    if hasattr(jax.checkpoint_policies, name))
REMAT_CHOICES = ("none", "block") + REMAT_POLICIES
ATTENTION_CHOICES = ("plain", "blockwise", "dot_product")
MEMORY_FIELDS = ("remat", "attention", "attention_block", "logits_chunk", "vocab_chunk")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of a Llama/Qwen2-family decoder-only transformer.

    rope_layout: "half" rotates (x[:d/2], x[d/2:]) as HF checkpoints do; "interleaved" rotates
    consecutive pairs (x[2i], x[2i+1]) as llama2.c and Meta's original code do.
    """
    vocab_size: int = 64
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 344
    head_dim: Optional[int] = None  # default d_model // n_heads
    rms_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_layout: str = "half"
    # Llama-3 RoPE frequency scaling: (factor, low_freq_factor, high_freq_factor,
    # original_max_position_embeddings), or None for plain RoPE.
    rope_scaling: Optional[Tuple[float, float, float, int]] = None
    qkv_bias: bool = False
    tied_embeddings: bool = True
    dtype: str = "float32"  # compute dtype: "float32" or "bfloat16"; params stay float32
    max_seq_len: int = 2048
    lora_scale: float = 1.0  # alpha / rank of LoRA adapters, when the params hold any
    # Memory of the forward (none changes a parameter; the defaults are the plain path):
    remat: str = "none"          # per-block activation checkpointing: REMAT_CHOICES
    attention: str = "plain"     # "plain" | "blockwise" (online softmax) | "dot_product"
    attention_block: int = 512   # blockwise: query/key block; plain attention up to this length
    logits_chunk: int = 0        # rlpt.logprobs: completion columns per logits chunk (0 = off)
    vocab_chunk: int = 0         # ... and vocabulary columns per chunk (0 = whole vocabulary)

    def __post_init__(self):
        self._check_memory_fields()
        if self.rope_layout not in ("half", "interleaved"):
            raise ValueError(f"model.rope_layout={self.rope_layout!r}; expected 'half' or 'interleaved'")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"model.dtype={self.dtype!r}; expected 'float32' or 'bfloat16'")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"model.n_heads={self.n_heads} is not a multiple of "
                             f"model.n_kv_heads={self.n_kv_heads} (grouped-query attention)")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"model.d_model={self.d_model} is not divisible by model.n_heads="
                             f"{self.n_heads}; set model.head_dim explicitly")
        if self.hd % 2:
            raise ValueError(f"head_dim={self.hd} must be even for RoPE")

    def _check_memory_fields(self):
        if self.remat not in REMAT_CHOICES:
            raise ValueError(f"model.remat={self.remat!r}; known: {list(REMAT_CHOICES)}")
        if self.attention not in ATTENTION_CHOICES:
            raise ValueError(f"model.attention={self.attention!r}; known: "
                             f"{list(ATTENTION_CHOICES)}")
        if self.attention_block <= 0:
            raise ValueError(f"model.attention_block={self.attention_block} must be > 0")
        if self.logits_chunk < 0 or self.vocab_chunk < 0:
            raise ValueError(f"model.logits_chunk={self.logits_chunk} and model.vocab_chunk="
                             f"{self.vocab_chunk} must be >= 0 (0 = off)")
        if self.vocab_chunk and self.vocab_size % self.vocab_chunk:
            raise ValueError(f"model.vocab_chunk={self.vocab_chunk} does not divide the "
                             f"vocabulary ({self.vocab_size}); use a divisor of it, or 0")

    @property
    def hd(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    def num_params(self) -> int:
        d, f, v, hd = self.d_model, self.d_ff, self.vocab_size, self.hd
        attn = d * hd * (self.n_heads * 2 + self.n_kv_heads * 2)
        if self.qkv_bias:
            attn += hd * (self.n_heads + 2 * self.n_kv_heads)
        per_layer = attn + 3 * d * f + 2 * d
        return v * d * (1 if self.tied_embeddings else 2) + self.n_layers * per_layer + d


PRESETS = {
    # Tests and CPU runs.
    "nano": ModelConfig(vocab_size=64, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=64),
    "tiny": ModelConfig(vocab_size=64, d_model=128, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=344),
    "small": ModelConfig(vocab_size=64, d_model=256, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=688),
    # Benchmarks W1 / W2 (issue 3): Qwen2-style, tied embeddings, vocab 64.
    "bench_w1": ModelConfig(vocab_size=64, d_model=256, n_layers=4, n_heads=4, n_kv_heads=2,
                            d_ff=688, qkv_bias=True),
    "bench_w2": ModelConfig(vocab_size=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
                            d_ff=172, qkv_bias=True),
    # llama2.c stories260K.
    "stories260k": ModelConfig(vocab_size=512, d_model=64, n_layers=5, n_heads=8, n_kv_heads=4,
                               d_ff=172, rms_eps=1e-5, rope_layout="interleaved",
                               tied_embeddings=True, max_seq_len=512),
    # Real shapes (config.json of the public checkpoints).
    "qwen2.5-0.5b": ModelConfig(vocab_size=151936, d_model=896, n_layers=24, n_heads=14,
                                n_kv_heads=2, d_ff=4864, rms_eps=1e-6, rope_theta=1e6,
                                qkv_bias=True, tied_embeddings=True, dtype="bfloat16",
                                max_seq_len=32768),
    "qwen2.5-1.5b": ModelConfig(vocab_size=151936, d_model=1536, n_layers=28, n_heads=12,
                                n_kv_heads=2, d_ff=8960, rms_eps=1e-6, rope_theta=1e6,
                                qkv_bias=True, tied_embeddings=True, dtype="bfloat16",
                                max_seq_len=32768),
    "qwen2.5-7b": ModelConfig(vocab_size=152064, d_model=3584, n_layers=28, n_heads=28,
                              n_kv_heads=4, d_ff=18944, rms_eps=1e-6, rope_theta=1e6,
                              qkv_bias=True, tied_embeddings=False, dtype="bfloat16",
                              max_seq_len=32768),
    "llama-3.2-1b": ModelConfig(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32,
                                n_kv_heads=8, d_ff=8192, rms_eps=1e-5, rope_theta=500000.0,
                                rope_scaling=(32.0, 1.0, 4.0, 8192), tied_embeddings=True,
                                dtype="bfloat16", max_seq_len=131072),
}


def get_model_config(name: str, **overrides) -> ModelConfig:
    """A preset by name with field overrides; unknown names list the presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known presets: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def memory_options(model_section) -> dict:
    """The memory fields (MEMORY_FIELDS) of a run config's `model` section (a ConfigDict or the
    dict of a saved config.json), each at ModelConfig's default when absent (a config saved
    before the field existed), for `dataclasses.replace(model_cfg, **options)`."""
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    return {k: model_section.get(k, defaults[k]) for k in MEMORY_FIELDS}

"""Checkpoint loaders: HF safetensors (Qwen2 / Llama) and llama2.c `.bin` files.

Both return `(ModelConfig, params)` with params laid out as `rlpt.models.transformer` expects
(Dense kernels are [in, out], so HF / llama2.c [out, in] matrices are transposed).
"""
import glob
import json
import os
from typing import Dict, Tuple

import numpy as np

from rlpt.models.config import ModelConfig

_HF_ARCHS = {"qwen2": True, "llama": False}  # model_type -> default QKV bias


def _rope_theta(hf: dict) -> float:
    if "rope_theta" in hf:
        return float(hf["rope_theta"])
    rp = hf.get("rope_parameters") or {}
    if "rope_theta" in rp:
        return float(rp["rope_theta"])
    return 10000.0


def hf_model_config(hf: dict, dtype: str = "float32", path: str = "config.json") -> ModelConfig:
    """ModelConfig from a HF config.json dict (Qwen2 or Llama)."""
    mtype = hf.get("model_type")
    if mtype not in _HF_ARCHS:
        raise ValueError(f"{path}: model_type={mtype!r} is not supported; known: {sorted(_HF_ARCHS)}")
    scaling = hf.get("rope_scaling") or (hf.get("rope_parameters") or {})
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    rope_scaling = None
    if rope_type == "llama3":
        rope_scaling = (float(scaling["factor"]), float(scaling["low_freq_factor"]),
                        float(scaling["high_freq_factor"]),
                        int(scaling["original_max_position_embeddings"]))
    elif rope_type not in ("default", None):
        raise NotImplementedError(f"{path}: rope scaling {scaling!r} is not implemented "
                                  "(supported: default, llama3)")
    n_heads = hf["num_attention_heads"]
    qkv_bias = hf.get("attention_bias", _HF_ARCHS[mtype]) if mtype == "llama" else True
    return ModelConfig(
        vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
        n_heads=n_heads, n_kv_heads=hf.get("num_key_value_heads", n_heads),
        d_ff=hf["intermediate_size"], head_dim=hf.get("head_dim"), rms_eps=hf["rms_norm_eps"],
        rope_theta=_rope_theta(hf), rope_layout="half", rope_scaling=rope_scaling,
        qkv_bias=bool(qkv_bias),
        tied_embeddings=bool(hf.get("tie_word_embeddings", False)), dtype=dtype,
        max_seq_len=hf.get("max_position_embeddings", 2048))


def load_hf_checkpoint(directory: str, dtype: str = "float32") -> Tuple[ModelConfig, Dict]:
    """Loads a HF directory holding config.json and *.safetensors (Qwen2 or Llama)."""
    from safetensors.numpy import load_file

    cfg_path = os.path.join(directory, "config.json")
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{cfg_path} not found (expected a HF checkpoint directory)")
    with open(cfg_path) as f:
        cfg = hf_model_config(json.load(f), dtype, cfg_path)
    files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    if not files:
        raise FileNotFoundError(f"no *.safetensors files in {directory}")
    w = {}
    for fn in files:
        w.update({k: v.astype(np.float32) for k, v in load_file(fn).items()})

    def take(name):
        if name not in w:
            raise KeyError(f"{directory}: tensor {name!r} missing from the safetensors files")
        return w.pop(name)

    params = {"embed": {"embedding": take("model.embed_tokens.weight")},
              "final_norm": {"scale": take("model.norm.weight")}}
    for i in range(cfg.n_layers):
        pre = f"model.layers.{i}."
        attn = {}
        for n in ("q", "k", "v", "o"):
            attn[n] = {"kernel": take(pre + f"self_attn.{n}_proj.weight").T}
            if cfg.qkv_bias and n != "o":
                attn[n]["bias"] = take(pre + f"self_attn.{n}_proj.bias")
        params[f"layer_{i}"] = {
            "attn": attn,
            "attn_norm": {"scale": take(pre + "input_layernorm.weight")},
            "mlp_norm": {"scale": take(pre + "post_attention_layernorm.weight")},
            "mlp": {n: {"kernel": take(pre + f"mlp.{n}_proj.weight").T}
                    for n in ("gate", "up", "down")},
        }
    if cfg.tied_embeddings:
        w.pop("lm_head.weight", None)
    else:
        params["lm_head"] = {"kernel": take("lm_head.weight").T}
    w = {k: v for k, v in w.items() if "rotary_emb" not in k}
    if w:
        raise ValueError(f"{directory}: unused tensors {sorted(w)[:5]} (architecture mismatch?)")
    return cfg, params


def load_llama2c(path: str, dtype: str = "float32") -> Tuple[ModelConfig, Dict]:
    """Loads a llama2.c checkpoint (header of 7 int32 then float32 weights; see shared/data)."""
    raw = open(path, "rb").read()
    if len(raw) < 28:
        raise ValueError(f"{path}: too short for a llama2.c header ({len(raw)} bytes)")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = np.frombuffer(raw[:28], "<i4").tolist()
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    data = np.frombuffer(raw[28:], "<f4")
    sizes = [("emb", (vocab, dim)), ("attn_norm", (n_layers, dim)),
             ("wq", (n_layers, dim, dim)), ("wk", (n_layers, kv_dim, dim)),
             ("wv", (n_layers, kv_dim, dim)), ("wo", (n_layers, dim, dim)),
             ("ffn_norm", (n_layers, dim)), ("w1", (n_layers, hidden, dim)),
             ("w2", (n_layers, dim, hidden)), ("w3", (n_layers, hidden, dim)),
             ("final_norm", (dim,)), ("freq_re", (seq_len, hd // 2)),
             ("freq_im", (seq_len, hd // 2))]
    if not shared:
        sizes.append(("cls", (vocab, dim)))
    need = sum(int(np.prod(s)) for _, s in sizes)
    if data.size < need:
        raise ValueError(f"{path}: header says {need} floats of weights, file holds {data.size}")
    arrs, off = {}, 0
    for name, shape in sizes:
        n = int(np.prod(shape))
        arrs[name] = data[off: off + n].reshape(shape).copy()
        off += n
    cfg = ModelConfig(vocab_size=vocab, d_model=dim, n_layers=n_layers, n_heads=n_heads,
                      n_kv_heads=n_kv, d_ff=hidden, rms_eps=1e-5, rope_theta=10000.0,
                      rope_layout="interleaved", qkv_bias=False, tied_embeddings=shared,
                      dtype=dtype, max_seq_len=seq_len)
    params = {"embed": {"embedding": arrs["emb"]}, "final_norm": {"scale": arrs["final_norm"]}}
    for i in range(n_layers):
        params[f"layer_{i}"] = {
            "attn": {n: {"kernel": arrs[w][i].T} for n, w in
                     (("q", "wq"), ("k", "wk"), ("v", "wv"), ("o", "wo"))},
            "attn_norm": {"scale": arrs["attn_norm"][i]},
            "mlp_norm": {"scale": arrs["ffn_norm"][i]},
            "mlp": {"gate": {"kernel": arrs["w1"][i].T}, "up": {"kernel": arrs["w3"][i].T},
                    "down": {"kernel": arrs["w2"][i].T}},
        }
    if not shared:
        params["lm_head"] = {"kernel": arrs["cls"].T}
    return cfg, params


def save_hf_checkpoint(directory: str, cfg: ModelConfig, params: Dict) -> None:
    """Writes `params` as a HF Llama directory (config.json + model.safetensors) that
    `load_hf_checkpoint` reads back exactly. Needs rope_layout "half" (the HF layout)."""
    from safetensors.numpy import save_file

    if cfg.rope_layout != "half":
        raise ValueError("save_hf_checkpoint: HF checkpoints use rope_layout='half'")
    hf = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
          "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model,
          "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
          "num_key_value_heads": cfg.n_kv_heads, "intermediate_size": cfg.d_ff,
          "head_dim": cfg.hd, "rms_norm_eps": cfg.rms_eps, "rope_theta": cfg.rope_theta,
          "attention_bias": cfg.qkv_bias, "tie_word_embeddings": cfg.tied_embeddings,
          "max_position_embeddings": cfg.max_seq_len, "torch_dtype": "float32"}
    if cfg.rope_scaling is not None:
        f, lo, hi, orig = cfg.rope_scaling
        hf["rope_scaling"] = {"rope_type": "llama3", "factor": f, "low_freq_factor": lo,
                              "high_freq_factor": hi, "original_max_position_embeddings": orig}
    a = lambda x: np.ascontiguousarray(np.asarray(x, np.float32))
    w = {"model.embed_tokens.weight": a(params["embed"]["embedding"]),
         "model.norm.weight": a(params["final_norm"]["scale"])}
    for i in range(cfg.n_layers):
        p, pre = params[f"layer_{i}"], f"model.layers.{i}."
        for n in ("q", "k", "v", "o"):
            w[pre + f"self_attn.{n}_proj.weight"] = a(np.asarray(p["attn"][n]["kernel"]).T)
            if "bias" in p["attn"][n]:
                w[pre + f"self_attn.{n}_proj.bias"] = a(p["attn"][n]["bias"])
        w[pre + "input_layernorm.weight"] = a(p["attn_norm"]["scale"])
        w[pre + "post_attention_layernorm.weight"] = a(p["mlp_norm"]["scale"])
        for n in ("gate", "up", "down"):
            w[pre + f"mlp.{n}_proj.weight"] = a(np.asarray(p["mlp"][n]["kernel"]).T)
    if not cfg.tied_embeddings:
        w["lm_head.weight"] = a(np.asarray(params["lm_head"]["kernel"]).T)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(hf, f, indent=2)
    save_file(w, os.path.join(directory, "model.safetensors"))

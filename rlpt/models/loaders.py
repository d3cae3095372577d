"""Checkpoint loaders: HF safetensors (Qwen2 / Llama) and llama2.c `.bin` files.

Both return `(ModelConfig, params)` with params laid out as `rlpt.models.transformer` expects
(Dense kernels are [in, out], so HF / llama2.c [out, in] matrices are transposed).

Bad files fail at load time with a one-line ValueError that names the file and what is wrong:
a truncated or garbled safetensors / llama2.c file, a config.json that is not JSON, lacks a
field or holds a non-positive size, and tensors whose shapes disagree with config.json. A
missing file raises MissingFileError (both a FileNotFoundError and a ValueError).

A HF directory's weights are the files its checkpoint names, as transformers reads them: the
shards in `model.safetensors.index.json`'s weight_map, else `model.safetensors`, else its only
`*.safetensors` file; several other `*.safetensors` files and no index are refused (a ValueError
naming the directory), never merged, so a stale file beside the checkpoint is not read.
"""
import glob
import json
import math
import os
from typing import Dict, Tuple

import numpy as np

from rlpt.errors import UserError
from rlpt.models.config import ModelConfig

_HF_ARCHS = {"qwen2": True, "llama": False}  # model_type -> default QKV bias
_HF_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
             "intermediate_size")  # required positive ints of config.json


class MissingFileError(FileNotFoundError, UserError):
    """A file a loader needs does not exist (catchable as either error)."""


def read_json_file(path: str) -> dict:
    """The JSON object in `path`; ValueError naming the path if it is not a JSON object."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})"
                        ) from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _positive_int(hf: dict, key: str, path: str) -> int:
    v = hf[key]
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise UserError(f"{path}: {key}={v!r} is not a positive integer")
    return v


def _rope_theta(hf: dict) -> float:
    if "rope_theta" in hf:
        return float(hf["rope_theta"])
    rp = hf.get("rope_parameters") or {}
    if "rope_theta" in rp:
        return float(rp["rope_theta"])
    return 10000.0


def hf_model_config(hf: dict, dtype: str = "float32", path: str = "config.json") -> ModelConfig:
    """ModelConfig from a HF config.json dict (Qwen2 or Llama); ValueError naming `path` for a
    missing field, a non-positive size or a combination ModelConfig rejects."""
    mtype = hf.get("model_type")
    if mtype not in _HF_ARCHS:
        raise UserError(f"{path}: model_type={mtype!r} is not supported; known: "
                        f"{sorted(_HF_ARCHS)}")
    missing = [k for k in _HF_SIZES + ("rms_norm_eps",) if k not in hf]
    if missing:
        raise UserError(f"{path}: missing field(s) {missing}")
    sizes = {k: _positive_int(hf, k, path) for k in _HF_SIZES}
    n_heads = sizes["num_attention_heads"]
    n_kv = _positive_int(hf, "num_key_value_heads", path) if "num_key_value_heads" in hf \
        else n_heads
    head_dim = _positive_int(hf, "head_dim", path) if hf.get("head_dim") is not None else None
    if head_dim is None and sizes["hidden_size"] % n_heads:
        raise UserError(f"{path}: hidden_size={sizes['hidden_size']} is not a multiple of "
                        f"num_attention_heads={n_heads} (and no head_dim is given)")
    scaling = hf.get("rope_scaling") or (hf.get("rope_parameters") or {})
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    rope_scaling = None
    if rope_type == "llama3":
        try:
            rope_scaling = (float(scaling["factor"]), float(scaling["low_freq_factor"]),
                            float(scaling["high_freq_factor"]),
                            int(scaling["original_max_position_embeddings"]))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: llama3 rope_scaling {scaling!r} is incomplete or not "
                            f"numeric ({type(e).__name__}: {e})") from None
    elif rope_type not in ("default", None):
        raise NotImplementedError(f"{path}: rope scaling {scaling!r} is not implemented "
                                  "(supported: default, llama3)")
    qkv_bias = hf.get("attention_bias", _HF_ARCHS[mtype]) if mtype == "llama" else True
    try:
        return ModelConfig(
            vocab_size=sizes["vocab_size"], d_model=sizes["hidden_size"],
            n_layers=sizes["num_hidden_layers"], n_heads=n_heads, n_kv_heads=n_kv,
            d_ff=sizes["intermediate_size"], head_dim=head_dim,
            rms_eps=float(hf["rms_norm_eps"]), rope_theta=_rope_theta(hf), rope_layout="half",
            rope_scaling=rope_scaling, qkv_bias=bool(qkv_bias),
            tied_embeddings=bool(hf.get("tie_word_embeddings", False)), dtype=dtype,
            max_seq_len=hf.get("max_position_embeddings", 2048))
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: {e}") from None


def _expected_shapes(cfg: ModelConfig) -> Dict[str, Tuple[int, ...]]:
    """HF tensor name -> the shape `cfg` implies (HF matrices are [out, in])."""
    D, F, V = cfg.d_model, cfg.d_ff, cfg.vocab_size
    q, kv = cfg.n_heads * cfg.hd, cfg.n_kv_heads * cfg.hd
    out = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,),
           "lm_head.weight": (V, D)}
    layer = {"self_attn.q_proj.weight": (q, D), "self_attn.k_proj.weight": (kv, D),
             "self_attn.v_proj.weight": (kv, D), "self_attn.o_proj.weight": (D, q),
             "self_attn.q_proj.bias": (q,), "self_attn.k_proj.bias": (kv,),
             "self_attn.v_proj.bias": (kv,), "input_layernorm.weight": (D,),
             "post_attention_layernorm.weight": (D,), "mlp.gate_proj.weight": (F, D),
             "mlp.up_proj.weight": (F, D), "mlp.down_proj.weight": (D, F)}
    for i in range(cfg.n_layers):
        out.update({f"model.layers.{i}.{k}": v for k, v in layer.items()})
    return out


def _load_safetensors(fn: str) -> Dict[str, np.ndarray]:
    """The tensors of one safetensors file; ValueError naming it if it is truncated or garbled."""
    from safetensors.numpy import load_file
    try:
        return load_file(fn)
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends: name the file
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{fn}: not a readable safetensors file "
                        f"({os.path.getsize(fn)} bytes; {why})") from None


def hf_weight_files(directory: str) -> list:
    """The safetensors files of the HF checkpoint in `directory` (module doc); MissingFileError
    for a missing one, ValueError naming the index or directory when they are ambiguous."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        weight_map = read_json_file(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserError(f"{index}: no weight_map (expected {{tensor name: shard file}})")
        bad = [n for n in weight_map.values() if not isinstance(n, str) or os.path.basename(n) != n]
        if bad:
            raise UserError(f"{index}: weight_map names {bad[0]!r}, not a file in {directory}")
        files = [os.path.join(directory, n) for n in sorted(set(weight_map.values()))]
        for fn in files:
            if not os.path.isfile(fn):
                raise MissingFileError(f"{fn}: file not found (a shard named in {index})")
        return files
    if os.path.isfile(os.path.join(directory, "model.safetensors")):
        return [os.path.join(directory, "model.safetensors")]
    files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    if not files:
        raise MissingFileError(f"no *.safetensors files in {directory}")
    if len(files) > 1:
        names = [os.path.basename(f) for f in files]
        raise UserError(f"{directory}: {len(files)} *.safetensors files {names[:5]} and no "
                        "model.safetensors.index.json naming the checkpoint's shards; add the "
                        "index or remove the files that are not this checkpoint's")
    return files


def load_hf_checkpoint(directory: str, dtype: str = "float32") -> Tuple[ModelConfig, Dict]:
    """Loads a HF directory holding config.json and safetensors weights (Qwen2 or Llama): only
    the files `hf_weight_files` names (the index's shards, else model.safetensors).

    Every file is checked at load time (see the module docstring): each tensor's shape must be
    the one config.json implies, and no tensor may be missing or left over.
    """
    cfg_path = os.path.join(directory, "config.json")
    if not os.path.exists(cfg_path):
        raise MissingFileError(f"{cfg_path} not found (expected a HF checkpoint directory)")
    cfg = hf_model_config(read_json_file(cfg_path), dtype, cfg_path)
    files = hf_weight_files(directory)
    w, where = {}, {}
    for fn in files:
        for k, v in _load_safetensors(fn).items():
            w[k], where[k] = v.astype(np.float32), fn
    shapes = _expected_shapes(cfg)

    def take(name):
        if name not in w:
            raise UserError(f"{directory}: tensor {name!r} missing from the safetensors files "
                            f"(does {cfg_path} match this checkpoint?)")
        if w[name].shape != shapes[name]:
            raise UserError(f"{where[name]}: tensor {name!r} has shape {w[name].shape}, but "
                            f"{cfg_path} implies {shapes[name]}")
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
        raise UserError(f"{directory}: unused tensors {sorted(w)[:5]} (architecture mismatch "
                        f"with {cfg_path}?)")
    return cfg, params


def load_llama2c(path: str, dtype: str = "float32") -> Tuple[ModelConfig, Dict]:
    """Loads a llama2.c checkpoint (header of 7 int32 then float32 weights; see shared/data).

    ValueError naming the file for a short file, a header with a non-positive or inconsistent
    size, or fewer weights than the header implies.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: file not found")
    raw = open(path, "rb").read()
    if len(raw) < 28:
        raise UserError(f"{path}: too short for a llama2.c header ({len(raw)} bytes)")
    header = np.frombuffer(raw[:28], "<i4").tolist()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = header
    shared = vocab > 0
    vocab = abs(vocab)
    if min(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len) <= 0 or dim % n_heads \
            or n_heads % n_kv or (dim // n_heads) % 2:
        raise UserError(f"{path}: not a llama2.c checkpoint: header (dim, hidden_dim, n_layers, "
                        f"n_heads, n_kv_heads, vocab_size, seq_len) = {tuple(header)} is not a "
                        "consistent set of positive sizes")
    hd = dim // n_heads
    kv_dim = n_kv * hd
    if (len(raw) - 28) % 4:
        raise UserError(f"{path}: truncated llama2.c checkpoint: {len(raw) - 28} bytes of "
                        "weights after the header, not a whole number of float32 values")
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
    need = sum(math.prod(s) for _, s in sizes)  # Python ints: a garbage header cannot overflow
    if data.size < need:
        raise UserError(f"{path}: header says {need} floats of weights, file holds {data.size}")
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


def save_hf_checkpoint(directory: str, cfg: ModelConfig, params: Dict, extra=None) -> None:
    """Writes `params` as a HF Llama directory (Qwen2 when the model has QKV biases: HF Llama's
    attention_bias would add an o_proj bias too) with config.json + model.safetensors, which
    `load_hf_checkpoint` and transformers read back exactly. Needs rope_layout "half" (the HF
    layout). `extra`: more config.json fields (token ids)."""
    from safetensors.numpy import save_file

    if cfg.rope_layout != "half":
        raise ValueError("save_hf_checkpoint: HF checkpoints use rope_layout='half'")
    arch = ("qwen2", "Qwen2ForCausalLM") if cfg.qkv_bias else ("llama", "LlamaForCausalLM")
    hf = {"model_type": arch[0], "architectures": [arch[1]],
          "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model,
          "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
          "num_key_value_heads": cfg.n_kv_heads, "intermediate_size": cfg.d_ff,
          "head_dim": cfg.hd, "rms_norm_eps": cfg.rms_eps, "rope_theta": cfg.rope_theta,
          "attention_bias": cfg.qkv_bias, "tie_word_embeddings": cfg.tied_embeddings,
          "max_position_embeddings": cfg.max_seq_len, "torch_dtype": "float32", **(extra or {})}
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

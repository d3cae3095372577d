"""Writes small GGUF files for tests with the `gguf` package's GGUFWriter, laid out as llama.cpp's
converter lays them out: rlpt params -> GGUF names, matrices [out, in], Q/K rows permuted for
`llama`, and a tiny byte-level BPE tokenizer (256 byte symbols, a few merges, control tokens)."""
import numpy as np

from rlpt.models.gguf import permute_qk
from rlpt.models.gguf_tokenizer import byte_alphabet

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_vocab():
    """(tokens, token types): the specials (control), the 256 byte symbols, the merge results."""
    merged = ["".join(m.split(" ")) for m in MERGES]
    tokens = SPECIALS + list(byte_alphabet().values()) + merged
    return tokens, [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))


def write_gguf(path, cfg, params, arch="llama", quant=None, tokens=None, template=TEMPLATE,
               extra=None, skip=(), tensor_types=None, pre="smollm"):
    """A GGUF file of `params` (rlpt layout) for `cfg`. quant: a GGMLQuantizationType for every
    matrix (None: F32); extra: more metadata {key: value}; skip: tensor names to leave out;
    tensor_types: {name: raw GGMLQuantizationType written as zero bytes}."""
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg.n_layers)
    w.add_context_length(cfg.max_seq_len)
    w.add_embedding_length(cfg.d_model)
    w.add_feed_forward_length(cfg.d_ff)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_eps)
    w.add_rope_dimension_count(cfg.hd)
    w.add_vocab_size(cfg.vocab_size)
    vocab, types = tiny_vocab()
    tokens = vocab if tokens is None else tokens
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types[: len(tokens)] + [1] * (len(tokens) - len(types)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    if template is not None:
        w.add_chat_template(template)
    for key, value in (extra or {}).items():
        if isinstance(value, str):
            w.add_string(key, value)
        else:
            w.add_uint32(key, value)

    def add(name, x, heads=None, matrix=True):
        if name in skip:
            return
        x = np.ascontiguousarray(np.asarray(x, np.float32))
        if heads and arch == "llama":
            x = permute_qk(x, heads)
        if tensor_types and name in tensor_types:
            qtype = tensor_types[name]
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = np.zeros((*x.shape[:-1], x.shape[-1] // block * size), np.uint8)
            w.add_tensor(name, raw, raw_dtype=qtype)
        elif quant is not None and matrix:
            w.add_tensor(name, gguf.quants.quantize(x, quant), raw_dtype=quant)
        else:
            w.add_tensor(name, x)

    add("token_embd.weight", params["embed"]["embedding"])
    add("output_norm.weight", params["final_norm"]["scale"], matrix=False)
    if "lm_head" in params:
        add("output.weight", np.asarray(params["lm_head"]["kernel"]).T)
    heads = {"q": cfg.n_heads, "k": cfg.n_kv_heads, "v": None}
    for i in range(cfg.n_layers):
        p, pre = params[f"layer_{i}"], f"blk.{i}."
        add(pre + "attn_norm.weight", p["attn_norm"]["scale"], matrix=False)
        add(pre + "ffn_norm.weight", p["mlp_norm"]["scale"], matrix=False)
        for n in "qkv":
            add(f"{pre}attn_{n}.weight", np.asarray(p["attn"][n]["kernel"]).T, heads[n])
            if "bias" in p["attn"][n]:
                add(f"{pre}attn_{n}.bias", p["attn"][n]["bias"], heads[n], matrix=False)
        add(pre + "attn_output.weight", np.asarray(p["attn"]["o"]["kernel"]).T)
        for n in ("gate", "up", "down"):
            add(f"{pre}ffn_{n}.weight", np.asarray(p["mlp"][n]["kernel"]).T)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)

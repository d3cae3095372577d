"""Bad checkpoint and tokenizer files fail at load time with one line naming the file."""
import json
import os

import jax
import numpy as np
import pytest

from rlpt.errors import UserError
from rlpt.models import ModelConfig, init_params
from rlpt.models.loaders import (MissingFileError, load_hf_checkpoint, load_llama2c,
                                 save_hf_checkpoint)
from rlpt.tokenizers import HFTokenizer, train_bpe_tokenizer

CFG = ModelConfig(vocab_size=32, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=24,
                  tied_embeddings=False, max_seq_len=64)


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("hf"))
    save_hf_checkpoint(d, CFG, init_params(CFG, jax.random.PRNGKey(0)))
    return d


def _copy(good_dir, tmp_path, edit_config=None):
    """A copy of the good checkpoint in tmp_path, config.json edited by `edit_config(dict)`."""
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "model.safetensors").write_bytes(open(os.path.join(good_dir, "model.safetensors"),
                                               "rb").read())
    cfg = json.load(open(os.path.join(good_dir, "config.json")))
    if edit_config is not None:
        edit_config(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _one_line_error(exc_type, fn, *args, match):
    with pytest.raises(exc_type, match=match) as e:
        fn(*args)
    assert "\n" not in str(e.value), str(e.value)
    return str(e.value)


def test_good_checkpoint_loads(good_dir):
    cfg, params = load_hf_checkpoint(good_dir)
    assert (cfg.d_model, cfg.n_layers, cfg.d_ff) == (16, 2, 24) and "lm_head" in params


@pytest.mark.parametrize("keep", [0.5, 0.001])
def test_truncated_safetensors_names_the_file(good_dir, tmp_path, keep):
    d = _copy(good_dir, tmp_path)
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: max(3, int(len(data) * keep))])
    _one_line_error(ValueError, load_hf_checkpoint, str(d),
                    match=r"model\.safetensors: not a readable safetensors file")


@pytest.mark.parametrize("text,match", [
    ("{\"model_type\": \"llama\",", r"config\.json: invalid JSON"),
    ("[1, 2]", r"config\.json: expected a JSON object, got list"),
    ("\xff\xfe", r"config\.json: (invalid JSON|not UTF-8)"),
])
def test_invalid_config_json_names_the_file(good_dir, tmp_path, text, match):
    d = _copy(good_dir, tmp_path)
    (d / "config.json").write_bytes(text.encode("latin-1"))
    _one_line_error(ValueError, load_hf_checkpoint, str(d), match=match)


@pytest.mark.parametrize("edit,match", [
    (lambda c: c.pop("hidden_size"), r"config\.json: missing field\(s\) \['hidden_size'\]"),
    (lambda c: c.update(hidden_size="16"), r"config\.json: hidden_size='16' is not a positive"),
    (lambda c: c.update(num_key_value_heads=0), r"num_key_value_heads=0 is not a positive"),
    (lambda c: c.update(num_key_value_heads=3), r"config\.json: .*n_heads=4 is not a multiple"),
    (lambda c: c.update(rope_scaling={"rope_type": "llama3", "factor": 8}),
     r"config\.json: llama3 rope_scaling .* incomplete"),
])
def test_inconsistent_config_json_names_the_file(good_dir, tmp_path, edit, match):
    _one_line_error(ValueError, load_hf_checkpoint, str(_copy(good_dir, tmp_path, edit)),
                    match=match)


@pytest.mark.parametrize("edit,match", [
    (lambda c: c.update(intermediate_size=32),
     r"model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape "
     r"\(24, 16\), but .*config\.json implies \(32, 16\)"),
    (lambda c: c.update(vocab_size=40), r"embed_tokens\.weight' has shape \(32, 16\)"),
    (lambda c: c.update(num_key_value_heads=4), r"k_proj\.weight' has shape \(8, 16\)"),
    (lambda c: c.update(num_hidden_layers=3), r"'model\.layers\.2\..*' missing .*config\.json"),
    (lambda c: c.update(num_hidden_layers=1), r"unused tensors .*model\.layers\.1\."),
])
def test_config_that_does_not_match_the_tensors_fails_at_load(good_dir, tmp_path, edit, match):
    _one_line_error(ValueError, load_hf_checkpoint, str(_copy(good_dir, tmp_path, edit)),
                    match=match)


def test_missing_files_are_both_file_not_found_and_value_errors(good_dir, tmp_path):
    for exc in (FileNotFoundError, ValueError):
        _one_line_error(exc, load_hf_checkpoint, str(tmp_path / "nowhere"), match="nowhere")
    d = _copy(good_dir, tmp_path)
    (d / "model.safetensors").unlink()
    _one_line_error(MissingFileError, load_hf_checkpoint, str(d), match=r"no \*\.safetensors")


@pytest.mark.parametrize("header", [[0] * 7, [64, 172, 5, 7, 4, 512, 512],
                                    [2 ** 30, 2 ** 30, 2 ** 30, 2 ** 10, 2 ** 10, 2 ** 30, 1]])
def test_llama2c_bad_header_names_the_file(tmp_path, header):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(np.array(header, "<i4").tobytes() + b"\0" * 400)
    _one_line_error(ValueError, load_llama2c, str(bad), match=r"weights\.bin: ")


@pytest.mark.parametrize("cut", [1, 3, 4, 4000])
def test_truncated_llama2c_names_the_file(tmp_path, cut):
    """A file cut mid-float failed with numpy's "buffer size must be a multiple of element size",
    naming nothing (issue 29)."""
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 10, 4
    hd = dim // heads
    per_layer = 2 * dim + 2 * dim * dim + 2 * kv * hd * dim + 3 * hidden * dim
    floats = vocab * dim + layers * per_layer + dim + seq * hd
    good = np.array([dim, hidden, layers, heads, kv, vocab, seq], "<i4").tobytes() + \
        np.zeros(floats, "<f4").tobytes()
    (tmp_path / "good.bin").write_bytes(good)
    load_llama2c(str(tmp_path / "good.bin"))
    (tmp_path / "cut.bin").write_bytes(good[:-cut])
    _one_line_error(UserError, load_llama2c, str(tmp_path / "cut.bin"), match=r"cut\.bin: ")


# ----------------------------------------------------------------------------- tokenizer

def test_missing_tokenizer_names_the_path(tmp_path):
    path = str(tmp_path / "tokenizer.json")
    for exc in (ValueError, FileNotFoundError):
        _one_line_error(exc, HFTokenizer, path, match=r"tokenizer\.json: tokenizer file not found")
    _one_line_error(ValueError, HFTokenizer, str(tmp_path), match=r"tokenizer\.json: .*not found")


@pytest.mark.parametrize("text", ["not json at all", '{"version": "1.0"}', '{"model": 3}', ""])
def test_invalid_tokenizer_json_names_the_path(tmp_path, text):
    path = tmp_path / "tokenizer.json"
    path.write_text(text)
    _one_line_error(ValueError, HFTokenizer, str(path),
                    match=r"tokenizer\.json: not a valid tokenizer\.json \(")


def test_tokenizer_directory_is_accepted(tmp_path):
    train_bpe_tokenizer(["the cat sat on the mat"] * 20, 300, str(tmp_path / "tokenizer.json"))
    tok = HFTokenizer(str(tmp_path), eos_token="[EOS]")
    assert tok.decode(tok.encode("the cat")) == "the cat"


# ----------------------------------------------------------------------------- GGUF

def _tiny_gguf(path, **kw):
    from gguf_writer import tiny_vocab, write_gguf
    cfg = ModelConfig(vocab_size=len(tiny_vocab()[0]), d_model=32, n_layers=1, n_heads=2,
                      n_kv_heads=1, d_ff=64, rms_eps=1e-5)
    params = kw.pop("params", None) or init_params(cfg, jax.random.PRNGKey(0))
    return write_gguf(path, kw.pop("cfg", cfg), params, **kw)


@pytest.fixture(scope="module")
def good_gguf(tmp_path_factory):
    pytest.importorskip("gguf")
    return _tiny_gguf(tmp_path_factory.mktemp("gguf") / "model.gguf")


@pytest.mark.parametrize("keep", [10, 1000, 0.5, -3])
def test_truncated_gguf_names_the_file(good_gguf, tmp_path, keep):
    from rlpt.models import load_checkpoint
    with open(good_gguf, "rb") as f:
        data = f.read()
    bad = tmp_path / "model.gguf"
    bad.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    _one_line_error(ValueError, load_checkpoint, str(bad),
                    match=r"model\.gguf: not a readable GGUF file \(\d+ bytes; .*truncated")


def test_corrupt_gguf_names_the_file(good_gguf, tmp_path):
    from rlpt.models.gguf import load_gguf
    with open(good_gguf, "rb") as f:
        data = bytearray(f.read())
    data[40:80] = b"\xff" * 40  # inside the metadata
    (tmp_path / "model.gguf").write_bytes(bytes(data))
    _one_line_error(ValueError, load_gguf, str(tmp_path / "model.gguf"),
                    match=r"model\.gguf: (not a readable GGUF file|metadata)")
    (tmp_path / "x.gguf").write_bytes(b"GGML" + bytes(data[4:]))
    from rlpt.models import load_checkpoint
    _one_line_error(ValueError, load_checkpoint, str(tmp_path / "x.gguf"),
                    match=r"x\.gguf: not a GGUF file \(starts with b'GGML'")


@pytest.mark.parametrize("kw,match", [
    (dict(arch="falcon"), r"architecture 'falcon' is not supported; known: \['llama', 'qwen2'\]"),
    (dict(tensor_types={"blk.0.ffn_up.weight": "Q8_1"}),
     r"tensor 'blk\.0\.ffn_up\.weight' has type Q8_1, which the gguf package cannot de-quantise"),
    (dict(tensor_types={"blk.0.attn_v.weight": "I32"}),
     r"tensor 'blk\.0\.attn_v\.weight' has type I32"),
    (dict(skip=("blk.0.attn_k.weight",)), r"tensor 'blk\.0\.attn_k\.weight' missing"),
    (dict(cfg=ModelConfig(vocab_size=268, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1,
                          d_ff=96)),
     r"tensor 'blk\.0\.ffn_gate\.weight' has shape \(64, 32\), but the metadata "
     r"implies \(96, 32\)"),
    (dict(tokens=[f"t{i}" for i in range(300)]),
     r"the tokenizer has 300 tokens but the model's vocabulary has 268 rows"),
    (dict(extra={"llama.rope.scaling.type": "yarn"}), r"RoPE scaling \('yarn'"),
])
def test_unsupported_or_inconsistent_gguf_names_the_file(tmp_path, kw, match):
    gguf = pytest.importorskip("gguf")
    from rlpt.models import load_checkpoint
    if "tensor_types" in kw:
        kw["tensor_types"] = {k: gguf.GGMLQuantizationType[v]
                              for k, v in kw["tensor_types"].items()}
    path = _tiny_gguf(tmp_path / "bad.gguf", **kw)
    _one_line_error(ValueError, load_checkpoint, path, match=r"bad\.gguf: " + match)


@pytest.mark.parametrize("kw,match", [
    (dict(template="{% for m in messages %}{{ m.content }"), r"chat template does not compile"),
    (dict(template="{{ raise_exception('roles must alternate') }}"),
     r"chat template failed to render \(TemplateError: roles must alternate\)"),
    (dict(template="{{ messages[3]['content'] }}"), r"chat template failed to render \(Undefined"),
    (dict(pre="deepseek-llm"), r"tokenizer\.ggml\.pre='deepseek-llm' is not supported"),
])
def test_bad_gguf_tokenizer_names_the_file(tmp_path, kw, match):
    pytest.importorskip("gguf")
    from rlpt.tokenizers import load_tokenizer
    path = _tiny_gguf(tmp_path / "tok.gguf", **kw)
    _one_line_error(ValueError, load_tokenizer, path, match=r"tok\.gguf: " + match)


def test_bad_hf_chat_template_names_the_file(tmp_path):
    from rlpt.tokenizers import load_tokenizer
    train_bpe_tokenizer(["the cat sat on the mat"] * 20, 300, str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "[EOS]", "chat_template": "{% if %}"}))
    _one_line_error(ValueError, load_tokenizer, str(tmp_path),
                    match=r"tokenizer\.json: chat template does not compile")


def test_tokenizer_that_does_not_fit_the_model_names_both(tmp_path):
    from rlpt.tokenizers import check_tokenizer_fits, load_tokenizer
    train_bpe_tokenizer(["the cat sat on the mat"] * 20, 300, str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(str(tmp_path / "tokenizer.json"))
    check_tokenizer_fits(tok, tok.vocab_size, "tok.json", "model")  # fits exactly
    _one_line_error(ValueError, check_tokenizer_fits, tok, 10, "tok.json", "ckpt/model.gguf",
                    match=r"tok\.json: tokenizer does not match the model ckpt/model\.gguf: its "
                          r"vocabulary size needs \d+ embedding rows, the model has 10")

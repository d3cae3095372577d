"""Bad checkpoint and tokenizer files fail at load time with one line naming the file."""
import json
import os

import jax
import numpy as np
import pytest

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

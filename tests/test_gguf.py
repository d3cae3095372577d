"""GGUF files written in the test (tests/gguf_writer.py, llama.cpp's layout): exact round trip of
the parameter mapping and the Q/K un-permutation, de-quantised types and logits against HF
transformers reading the same file, the tokenizer, and `load_checkpoint` recognising each kind."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_DATA
from gguf_writer import tiny_vocab, write_gguf
from rlpt.errors import UserError
from rlpt.models import ModelConfig, checkpoint_kind, forward, init_params, load_checkpoint
from rlpt.models.gguf import permute_qk, unpermute_qk
from rlpt.models.loaders import MissingFileError, save_hf_checkpoint
from rlpt.tokenizers import load_tokenizer

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType


def tiny(arch="llama"):
    cfg = ModelConfig(vocab_size=len(tiny_vocab()[0]), d_model=64, n_layers=2, n_heads=4,
                      n_kv_heads=2, d_ff=96, rms_eps=1e-5, rope_theta=1e4,
                      qkv_bias=arch == "qwen2", tied_embeddings=arch == "llama", max_seq_len=128)
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(  # norms and biases away from 1 and 0, so they are tested
        lambda x: np.asarray(x) + 0.05 * rng.standard_normal(x.shape).astype(np.float32),
        init_params(cfg, jax.random.PRNGKey(0)))
    return cfg, params


def _hf_logits(directory, name, ids):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                              dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def test_qk_permutation_round_trip():
    w = np.arange(4 * 8 * 3, dtype=np.float32).reshape(32, 3)
    assert np.array_equal(unpermute_qk(permute_qk(w, 4), 4), w)
    # llama.cpp's order: head 0's HF rows (0, 4), (1, 5), ... side by side
    assert unpermute_qk(w, 4)[:8, 0].tolist() == w[[0, 2, 4, 6, 1, 3, 5, 7], 0].tolist()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_f32_file_round_trips_and_matches_transformers(arch, tmp_path):
    cfg, params = tiny(arch)
    path = write_gguf(tmp_path / "m.gguf", cfg, params, arch=arch)
    got_cfg, got = load_checkpoint(path)
    assert got_cfg == cfg
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 17))
    err = np.abs(np.asarray(forward(got_cfg, got, jnp.asarray(ids)))
                 - _hf_logits(str(tmp_path), "m.gguf", ids)).max()
    assert err < 1e-4, err


@pytest.mark.parametrize("qtype,tol", [(Q.Q8_0, 0.01), (Q.Q4_0, 0.1), (Q.Q4_1, 0.1),
                                       (Q.Q5_0, 0.05), (Q.F16, 1e-3), (Q.BF16, 1e-2)],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_quantised_files_dequantise_like_transformers(qtype, tol, tmp_path):
    cfg, params = tiny()
    path = write_gguf(tmp_path / "q.gguf", cfg, params, quant=qtype)
    got_cfg, got = load_checkpoint(path)
    emb, ref = got["embed"]["embedding"], params["embed"]["embedding"]
    assert emb.dtype == np.float32 and 0 < np.abs(emb - ref).max() < tol
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (1, 12))
    err = np.abs(np.asarray(forward(got_cfg, got, jnp.asarray(ids)))
                 - _hf_logits(str(tmp_path), "q.gguf", ids)).max()
    assert err < 1e-4, err


def test_tokenizer_of_a_written_file(tmp_path):
    cfg, params = tiny()
    tok = load_tokenizer(write_gguf(tmp_path / "t.gguf", cfg, params))
    tokens = tiny_vocab()[0]
    assert tok.encode("hello world") == [tokens.index("hello"), tokens.index("Ġworld")]
    ids = tok.encode("<|im_start|>hi<|im_end|>")
    assert len(ids) == 4 and ids[0] == 1 and ids[-1] == 2  # control tokens match whole
    assert tok.decode(tok.encode("héllo wörld 12")) == "héllo wörld 12"
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (1, 2, 2, cfg.vocab_size)
    text = tok.apply_chat_template([{"role": "user", "content": "hello"}])
    assert text == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_load_checkpoint_recognises_each_kind(tmp_path):
    cfg, params = tiny()
    gguf_path = write_gguf(tmp_path / "weights.bin", cfg, params)  # GGUF by content, not name
    hf_dir = str(tmp_path / "hf")
    save_hf_checkpoint(hf_dir, cfg, params)
    llama2c = os.path.join(SHARED_DATA, "llama2c", "stories260K.bin")
    assert checkpoint_kind(gguf_path) == "gguf" and checkpoint_kind(hf_dir) == "hf"
    assert load_checkpoint(gguf_path)[0] == cfg
    assert dataclasses.replace(load_checkpoint(hf_dir)[0], head_dim=None) == cfg
    if os.path.isfile(llama2c):
        assert checkpoint_kind(llama2c) == "llama2c"
        assert load_checkpoint(llama2c)[0].rope_layout == "interleaved"
    with pytest.raises(ValueError, match=r"weights\.bin: the config says a 'hf' checkpoint"):
        load_checkpoint(gguf_path, kind="hf")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt: not a recognised checkpoint"):
        load_checkpoint(str(tmp_path / "notes.txt"))
    with pytest.raises(MissingFileError, match="nowhere.gguf: checkpoint not found"):
        load_checkpoint(str(tmp_path / "nowhere.gguf"))


def test_trainer_builds_the_model_from_a_gguf_path(tmp_path):
    from rlpt.config import base_config, validate
    from rlpt.build import build_model
    cfg, params = tiny()
    c = base_config("grpo")
    c.model.checkpoint = write_gguf(tmp_path / "m.gguf", cfg, params)
    model_cfg, got = build_model(validate(c))
    assert model_cfg == cfg and isinstance(got["embed"]["embedding"], jax.Array)


def test_a_checkpoint_with_its_own_tokenizer_on_a_character_task_is_refused(tmp_path):
    """`--config.model.checkpoint=<a GGUF>` on configs/grpo_arith.py trained the model on the
    character tokenizer's ids, silently (issue 30): refused before the model is loaded, naming
    the checkpoint and the task; a checkpoint without a tokenizer (a HF directory of weights
    only, as rlpt's own exports of character-tokenizer runs) still trains on the task."""
    from configs import grpo_arith
    from rlpt.build import build_task
    from rlpt.config import validate
    from rlpt.models.loaders import save_hf_checkpoint
    cfg, params = tiny()
    c = grpo_arith.get_config("size=nano")
    c.model.preset, c.model.checkpoint = "tiny", write_gguf(tmp_path / "m.gguf", cfg, params)
    with pytest.raises(UserError, match=r"config model.checkpoint: .*m\.gguf comes with its own "
                                        r"tokenizer, but task 'addition' encodes text with the "
                                        r"CharTokenizer \(64 ids\)"):
        build_task(validate(c))
    save_hf_checkpoint(str(tmp_path / "hf"), cfg, params)
    c.model.checkpoint = str(tmp_path / "hf")
    assert build_task(validate(c)).tokenizer.vocab_size == 64


def test_bfloat16_compute_keeps_float32_params(tmp_path):
    cfg, params = tiny()
    path = write_gguf(tmp_path / "m.gguf", cfg, params)
    bf_cfg, bf_params = load_checkpoint(path, dtype="bfloat16")
    assert bf_cfg.dtype == "bfloat16" and bf_params["embed"]["embedding"].dtype == np.float32
    ids = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, (1, 9)))
    f32 = np.asarray(forward(cfg, params, ids))
    err = np.abs(np.asarray(forward(bf_cfg, bf_params, ids)) - f32).max()
    assert err < 0.05 * np.abs(f32).max()

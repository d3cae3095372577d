"""Model parity: rlpt's transformer against HF transformers and llama2.c reference outputs."""
import dataclasses
import os

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_DATA
from rlpt.models import forward
from rlpt.models.loaders import load_hf_checkpoint, load_llama2c

LLAMA2C = os.path.join(SHARED_DATA, "llama2c")


def _tiny_hf(kind, tmp_path, tie, rope_scaling=None):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    common = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                  num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128,
                  rms_norm_eps=1e-6, rope_theta=5000.0, tie_word_embeddings=tie)
    if kind == "qwen2":
        cfg = transformers.Qwen2Config(**common)
        model = transformers.Qwen2ForCausalLM(cfg)
    else:
        if rope_scaling:
            common["rope_scaling"] = dict(rope_scaling, rope_theta=common["rope_theta"])
        cfg = transformers.LlamaConfig(**common)
        model = transformers.LlamaForCausalLM(cfg)
    # Random init of HF leaves norms at 1 and biases at 0: perturb them so they are tested too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(tmp_path, safe_serialization=True)
    return torch, model


@pytest.mark.parametrize("kind,tie", [("qwen2", False), ("qwen2", True), ("llama", False)])
def test_hf_logits_parity(kind, tie, tmp_path):
    torch, model = _tiny_hf(kind, tmp_path, tie)
    cfg, params = load_hf_checkpoint(str(tmp_path))
    assert cfg.qkv_bias == (kind == "qwen2") and cfg.tied_embeddings == tie
    assert cfg.rope_theta == 5000.0
    ids = np.random.default_rng(0).integers(0, 97, size=(3, 21))
    with torch.no_grad():
        ref = model(torch.tensor(ids)).logits.numpy()
    got = np.asarray(forward(cfg, params, jnp.asarray(ids, jnp.int32)))
    err = np.abs(got - ref).max()
    print(f"{kind} tie={tie}: max abs logit error {err:.2e}")
    assert err < 1e-4


def test_hf_llama3_rope_scaling_parity(tmp_path):
    """Llama-3.x frequency scaling (as in Llama-3.2-1B), at positions past the original context."""
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    torch, model = _tiny_hf("llama", tmp_path, True, scaling)
    cfg, params = load_hf_checkpoint(str(tmp_path))
    assert cfg.rope_scaling == (8.0, 1.0, 4.0, 16)
    ids = np.random.default_rng(2).integers(0, 97, size=(2, 60))
    with torch.no_grad():
        ref = model(torch.tensor(ids)).logits.numpy()
    got = np.asarray(forward(cfg, params, jnp.asarray(ids, jnp.int32)))
    assert np.abs(got - ref).max() < 1e-4
    plain = np.asarray(forward(dataclasses.replace(cfg, rope_scaling=None), params,
                               jnp.asarray(ids, jnp.int32)))
    assert np.abs(plain - ref).max() > 1e-3  # the scaling matters at these positions


def test_bfloat16_compute_close_to_float32(tmp_path):
    torch, model = _tiny_hf("qwen2", tmp_path, False)
    cfg32, params = load_hf_checkpoint(str(tmp_path))
    cfg16, _ = load_hf_checkpoint(str(tmp_path), dtype="bfloat16")
    ids = jnp.asarray(np.random.default_rng(3).integers(0, 97, size=(2, 16)), jnp.int32)
    a, b = forward(cfg32, params, ids), forward(cfg16, params, ids)
    assert b.dtype == jnp.float32  # logits are returned in float32
    err = float(jnp.abs(a - b).max())
    assert 1e-6 < err < 0.1, err  # really computed in bf16, and close


def test_hf_left_padded_batch_matches_unpadded(tmp_path):
    """Left padding with per-row positions gives the unpadded logits on real tokens."""
    torch, model = _tiny_hf("qwen2", tmp_path, False)
    cfg, params = load_hf_checkpoint(str(tmp_path))
    ids = np.random.default_rng(1).integers(3, 97, size=(9,))
    with torch.no_grad():
        ref = model(torch.tensor(ids[None])).logits.numpy()[0]
    padded = np.concatenate([np.zeros(5, int), ids])[None]
    valid = padded != 0
    valid[0, :5] = False
    got = np.asarray(forward(cfg, params, jnp.asarray(padded), jnp.asarray(valid)))[0, 5:]
    assert np.abs(got - ref).max() < 1e-4


def test_llama2c_logits_parity():
    cfg, params = load_llama2c(os.path.join(LLAMA2C, "stories260K.bin"))
    assert (cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size) == \
        (64, 172, 5, 8, 4, 512)
    greedy = [int(x) for x in open(os.path.join(LLAMA2C, "greedy_ids_from_bos.txt")).read().split()]
    ref = np.load(os.path.join(LLAMA2C, "logits_first8.npy"))
    tokens = jnp.asarray([[1] + greedy[:7]], jnp.int32)
    got = np.asarray(forward(cfg, params, tokens))[0]
    err = np.abs(got - ref).max()
    print(f"llama2c stories260K: max abs logit error {err:.2e}")
    assert err < 1e-4


def test_llama2c_bad_file(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(np.array([64, 172, 5, 8, 4, 512, 512], "<i4").tobytes() + b"\0" * 100)
    with pytest.raises(ValueError, match="bad.bin"):
        load_llama2c(str(bad))


def test_rope_tables_are_cos_sin_of_the_angles_and_nan_outside_the_table():
    """The trace-time rotary tables equal cos/sin of position * inv_freq (float64 reference),
    with and without Llama-3 scaling; a position beyond the table gives NaN, not a clipped
    angle."""
    from rlpt.models.transformer import rope_inv_freq, rope_tables
    pos = jnp.array([[0, 1, 7, 63], [63, 2, 0, 40]])
    for scaling in (None, (8.0, 1.0, 4.0, 32)):
        inv = rope_inv_freq(16, 5000.0, scaling)
        cos, sin = rope_tables(pos, 64, 16, 5000.0, scaling)
        angle = np.asarray(pos, np.float32)[:, :, None] * inv
        np.testing.assert_allclose(np.asarray(cos)[:, :, 0], np.cos(angle), atol=1e-6)
        np.testing.assert_allclose(np.asarray(sin)[:, :, 0], np.sin(angle), atol=1e-6)
    cos, sin = rope_tables(jnp.array([[3, 64]]), 64, 16, 5000.0)
    assert np.isfinite(np.asarray(cos)[0, 0]).all() and np.isnan(np.asarray(cos)[0, 1]).all()
    assert np.isnan(np.asarray(sin)[0, 1]).all()

"""rlpt.export: a run's checkpoint (and models of each layout) as a HF directory that transformers
loads and runs to rlpt's logits."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_DATA
from rlpt.export import export_hf, export_run, main, run_tokenizer
from rlpt.models import forward, get_model_config, init_params, load_checkpoint
from rlpt.tokenizers import load_tokenizer, train_bpe_tokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _hf_logits(directory, ids):
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    with torch.no_grad():
        return model.eval()(torch.tensor(np.asarray(ids))).logits.numpy()


def _assert_same_logits(directory, cfg, params, vocab, tol=1e-4):
    ids = np.random.default_rng(0).integers(0, vocab, (2, 13))
    got = np.asarray(forward(cfg, params, jnp.asarray(ids, jnp.int32)))
    err = np.abs(got - _hf_logits(directory, ids)).max()
    assert err < tol, err


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory):
    """A few SFT and RL steps of the default config's tiny preset (character tokenizer)."""
    from configs.grpo_arith import get_config
    from rlpt.train import run
    cfg = get_config("quick=1")
    cfg.sft.steps = cfg.rl.steps = cfg.eval.every = cfg.log_every = cfg.ckpt_every = 3
    workdir = str(tmp_path_factory.mktemp("run"))
    run(cfg, workdir)
    return workdir


def test_export_of_a_run_round_trips_through_transformers(preset_run, tmp_path, capsys):
    import orbax.checkpoint as ocp
    out = str(tmp_path / "hf")
    main([f"--workdir={preset_run}", f"--out={out}"])
    assert "ckpt/rl/3" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json",
                                       "model.safetensors"]  # no tokenizer: character-level
    state = ocp.StandardCheckpointer().restore(os.path.join(preset_run, "ckpt", "rl", "3",
                                                            "default"))
    cfg = get_model_config("tiny")
    _assert_same_logits(out, cfg, state["params"], cfg.vocab_size)
    gen = json.load(open(os.path.join(out, "generation_config.json")))
    assert gen == {"eos_token_id": 2, "pad_token_id": 0}
    res = export_run(preset_run, str(tmp_path / "sft"), phase="sft")
    assert (res["phase"], res["step"]) == ("sft", 3)


def test_export_of_a_missing_run_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": {"preset": "nano"}}))
    with pytest.raises(ValueError, match="no checkpoints under"):
        export_run(str(tmp_path), str(tmp_path / "out"))


@pytest.mark.parametrize("preset", ["bench_w2", "nano"])  # Qwen2-style (QKV bias), Llama
def test_export_of_presets_matches_transformers(preset, tmp_path):
    cfg = get_model_config(preset)
    params = jax.tree_util.tree_map(  # norms and biases away from 1 and 0
        lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(3), x.shape),
        init_params(cfg, jax.random.PRNGKey(0)))
    export_hf(str(tmp_path), cfg, params)
    assert json.load(open(tmp_path / "config.json"))["model_type"] == (
        "qwen2" if cfg.qkv_bias else "llama")
    _assert_same_logits(str(tmp_path), cfg, params, cfg.vocab_size)


def test_export_of_an_interleaved_rope_model(tmp_path):
    """llama2.c's consecutive-pair rotary layout is converted to HF's rotate-half."""
    path = os.path.join(SHARED_DATA, "llama2c", "stories260K.bin")
    if not os.path.isfile(path):
        pytest.skip(f"{path} not present")
    cfg, params = load_checkpoint(path)
    export_hf(str(tmp_path), cfg, params)
    _assert_same_logits(str(tmp_path), cfg, params, cfg.vocab_size)


def test_run_tokenizer_is_the_tasks_with_its_special_tokens(tmp_path):
    path = train_bpe_tokenizer(["the cat sat on the mat"] * 20, 300, str(tmp_path / "tok.json"))
    run = {"model": {"checkpoint": "", "preset": "tiny"},
           "task": {"kwargs": {"tokenizer_path": path, "eos_token": "[EOS]", "pad_token": ""}}}
    tok = run_tokenizer(run)
    assert tok.eos_id == 2 and tok.pad_id == 2 and tok.special_tokens == {"eos_token": "[EOS]"}
    assert run_tokenizer({"model": {"checkpoint": ""}, "task": {"kwargs": {}}}) is None
    tok.save_pretrained(str(tmp_path / "saved"))
    back = load_tokenizer(str(tmp_path / "saved"))
    assert back.eos_id == 2 and back.encode("the mat") == tok.encode("the mat")

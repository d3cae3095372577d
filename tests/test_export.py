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


def _assert_same_logits(directory, cfg, params, vocab, rtol=2e-5):
    """Max |rlpt - HF| below `rtol` of the largest logit (at least 1): float32 forwards of two
    implementations differ in summation order, in proportion to the logits' scale (llama2.c's
    stories260K: logits up to 15.4, max difference 1.02e-4 with transformers 5.25 / torch 2.13,
    i.e. 6.6e-6 of the scale)."""
    ids = np.random.default_rng(0).integers(0, vocab, (2, 13))
    got = np.asarray(forward(cfg, params, jnp.asarray(ids, jnp.int32)))
    ref = _hf_logits(directory, ids)
    err = np.abs(got - ref).max()
    assert err < rtol * max(1.0, float(np.abs(ref).max())), (err, np.abs(ref).max())


def _check_run_export(workdir, tmp_path, capsys, rl_step, sft_step, rl_params, sft_params):
    out = str(tmp_path / "hf")
    main([f"--workdir={workdir}", f"--out={out}"])
    assert f"ckpt/rl/{rl_step}" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json",
                                       "model.safetensors"]  # no tokenizer: character-level
    cfg = get_model_config("tiny")
    _assert_same_logits(out, cfg, rl_params, cfg.vocab_size)
    with open(os.path.join(out, "generation_config.json")) as f:
        assert json.load(f) == {"eos_token_id": 2, "pad_token_id": 0}
    res = export_run(workdir, str(tmp_path / "sft"), phase="sft")
    assert (res["phase"], res["step"]) == ("sft", sft_step)
    _assert_same_logits(str(tmp_path / "sft"), cfg, sft_params, cfg.vocab_size)


def test_export_of_a_saved_run(tmp_path, capsys):
    """A workdir laid out as the trainer lays it out (its config.json and Checkpointer), two
    phases with different parameters and frozen models in the state: the newest RL step's
    parameters are exported, and --phase=sft picks the SFT ones."""
    from configs.grpo_arith import get_config
    from rlpt.config import validate
    from rlpt.io.checkpoints import Checkpointer
    from rlpt.io.workdir import write_config
    from rlpt.optim import make_optimizer
    from rlpt.state import new_state
    cfg = validate(get_config("quick=1"))
    workdir = str(tmp_path / "run")
    os.makedirs(workdir)
    write_config(workdir, cfg)
    model_cfg = get_model_config("tiny")
    params = [init_params(model_cfg, jax.random.PRNGKey(s)) for s in range(3)]
    opt = make_optimizer(cfg.optim)
    Checkpointer(workdir, "sft").save(4, new_state(params[0], opt, 0))
    for step, p in ((3, params[2]), (6, params[1])):
        Checkpointer(workdir, "rl").save(step, new_state(p, opt, 0, {"reference": params[0]}))
    _check_run_export(workdir, tmp_path, capsys, 6, 4, params[1], params[0])


@pytest.mark.slow
def test_export_of_a_trained_run(tmp_path, capsys):
    """A few SFT and GRPO steps of the default config's tiny preset through rlpt.train.run."""
    import orbax.checkpoint as ocp
    from configs.grpo_arith import get_config
    from rlpt.train import run
    cfg = get_config("quick=1")
    cfg.sft.steps = cfg.rl.steps = cfg.eval.every = cfg.log_every = cfg.ckpt_every = 3
    workdir = str(tmp_path / "run")
    run(cfg, workdir)
    restore = lambda phase, step: ocp.StandardCheckpointer().restore(
        os.path.join(workdir, "ckpt", phase, str(step), "default"))["params"]
    _check_run_export(workdir, tmp_path, capsys, 3, 3, restore("rl", 3), restore("sft", 3))


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
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["model_type"] == ("qwen2" if cfg.qkv_bias else "llama")
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

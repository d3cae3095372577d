"""rlpt.export: a run's checkpoint (and models of each layout) as a HF directory that transformers
loads and runs to rlpt's logits."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlpt.export
from conftest import SHARED_DATA
from rlpt.errors import UserError
from rlpt.export import export_hf, export_run, main, run_tokenizer
from rlpt.models import forward, get_model_config, init_params, load_checkpoint
from rlpt.models.loaders import load_hf_checkpoint, save_hf_checkpoint
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


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """(workdir, params): a workdir laid out as the trainer lays it out (its config.json and
    Checkpointer), two phases with different parameters and frozen models in the state:
    ckpt/sft/4 holds params[0], ckpt/rl/3 params[2] and ckpt/rl/6 (the newest) params[1]."""
    from configs.grpo_arith import get_config
    from rlpt.config import validate
    from rlpt.io.checkpoints import Checkpointer
    from rlpt.io.workdir import write_config
    from rlpt.optim import make_optimizer
    from rlpt.state import new_state
    cfg = validate(get_config("quick=1"))
    workdir = str(tmp_path_factory.mktemp("saved") / "run")
    os.makedirs(workdir)
    write_config(workdir, cfg)
    model_cfg = get_model_config("tiny")
    params = [init_params(model_cfg, jax.random.PRNGKey(s)) for s in range(3)]
    opt = make_optimizer(cfg.optim)
    Checkpointer(workdir, "sft").save(4, new_state(params[0], opt, 0))
    for step, p in ((3, params[2]), (6, params[1])):
        Checkpointer(workdir, "rl").save(step, new_state(p, opt, 0, {"reference": params[0]}))
    return workdir, params


def test_export_of_a_saved_run(saved_run, tmp_path, capsys):
    """The newest RL step's parameters are exported, and --phase=sft picks the SFT ones."""
    workdir, params = saved_run
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
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model": {"preset": "nano"}}))
    with pytest.raises(ValueError, match="no checkpoints under"):
        export_run(str(tmp_path / "run"), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


# ------------------------------------------------------------------------ the out directory

def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for root, _, names in os.walk(directory):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                found[os.path.relpath(os.path.join(root, n), directory)] = f.read()
    return found


@pytest.mark.parametrize("out", ["run", "./run/", "link", "run/hf", "link/hf/x", "."])
def test_export_into_the_run_is_refused(saved_run, tmp_path, monkeypatch, out):
    """The export's config.json would replace the run's (which could then not resume): --out
    equal to the workdir, inside it or holding it, however spelled (a symlink, ./run/), is
    refused with or without --overwrite, naming both paths, before anything is written."""
    run = str(tmp_path / "run")
    shutil.copytree(saved_run[0], run)
    os.symlink(run, tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    before = _files(run)
    for flags in ([], ["--overwrite"]):
        with pytest.raises(UserError, match="the run's directory") as e:
            main([f"--workdir={run}", f"--out={out}"] + flags)
        assert f"--out={out} " in str(e.value) and f"--workdir={run} " in str(e.value)
        assert _files(run) == before
        assert sorted(os.listdir(tmp_path)) == ["link", "run"]


def test_non_empty_out_is_refused_unless_overwrite_replaces_it(saved_run, tmp_path, capsys):
    """A stale tokenizer.json or another model's safetensors must not survive beside the new
    weights: a non-empty --out is refused untouched; --overwrite replaces it as a whole."""
    workdir, params = saved_run
    out = tmp_path / "hf"
    out.mkdir()
    stale = {"tokenizer.json": b"{}", "other.safetensors": b"stale", "config.json": b"{}"}
    for name, data in stale.items():
        (out / name).write_bytes(data)
    with pytest.raises(UserError, match="directory is not empty; pass --overwrite") as e:
        main([f"--workdir={workdir}", f"--out={out}"])
    assert str(out) in str(e.value)
    assert _files(out) == stale
    main([f"--workdir={workdir}", f"--out={out}", "--overwrite"])
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json",
                                       "model.safetensors"]
    assert os.listdir(tmp_path) == ["hf"]  # no temporary or old directory left
    _, got = load_hf_checkpoint(str(out))
    np.testing.assert_array_equal(got["embed"]["embedding"], params[1]["embed"]["embedding"])


@pytest.mark.parametrize("previous", [True, False])
def test_failed_export_leaves_the_previous_out_as_it_was(saved_run, tmp_path, monkeypatch,
                                                         previous):
    """A failure after part of the export is written (here: a full disk after the weights)
    leaves the previous --out byte for byte (or none), and no temporary directory."""
    out = tmp_path / "hf"
    if previous:
        out.mkdir()
        (out / "config.json").write_text("previous")
        (out / "model.safetensors").write_text("previous weights")
    before = _files(out)

    def save_then_fail(directory, *args, **kwargs):
        save_hf_checkpoint(directory, *args, **kwargs)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(rlpt.export, "save_hf_checkpoint", save_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        main([f"--workdir={saved_run[0]}", f"--out={out}"] + ["--overwrite"] * previous)
    assert os.listdir(tmp_path) == (["hf"] if previous else [])
    assert _files(out) == before


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

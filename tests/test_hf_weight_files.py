"""load_hf_checkpoint reads only the safetensors files the checkpoint names (the index's shards,
else model.safetensors), never a stale file beside them; several files and no index fail."""
import json
import os
import shutil

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rlpt.models import ModelConfig, init_params
from rlpt.models.loaders import MissingFileError, load_hf_checkpoint, save_hf_checkpoint

CFG = ModelConfig(vocab_size=32, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=24,
                  tied_embeddings=False, max_seq_len=64)


def _save(directory, seed):
    params = init_params(CFG, jax.random.PRNGKey(seed))
    save_hf_checkpoint(str(directory), CFG, params)
    return params


def _assert_loads(directory, params):
    _, got = load_hf_checkpoint(str(directory))
    pairs = zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(params))
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(params)
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def _shard(directory):
    """model.safetensors split in two shards + model.safetensors.index.json; returns the
    tensors of model.safetensors (now removed)."""
    w = load_file(os.path.join(directory, "model.safetensors"))
    os.remove(os.path.join(directory, "model.safetensors"))
    names = sorted(w)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for fn, keys in shards.items():
        save_file({k: w[k] for k in keys}, os.path.join(directory, fn))
    index = {"metadata": {}, "weight_map": {k: fn for fn, keys in shards.items() for k in keys}}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)


def _one_line_error(exc_type, directory, match):
    with pytest.raises(exc_type, match=match) as e:
        load_hf_checkpoint(str(directory))
    assert "\n" not in str(e.value), str(e.value)


def test_model_safetensors_is_read_not_a_stale_file_beside_it(tmp_path):
    _save(tmp_path / "other", 1)
    params = _save(tmp_path / "ckpt", 0)
    os.rename(tmp_path / "other" / "model.safetensors", tmp_path / "ckpt" / "stale.safetensors")
    _assert_loads(tmp_path / "ckpt", params)


def test_index_names_exactly_the_shards_read(tmp_path):
    params = _save(tmp_path, 0)
    _shard(str(tmp_path))
    _save(tmp_path / "other", 1)  # another model's weights beside the shards
    for name in ("model.safetensors", "model-00003-of-00003.safetensors"):
        shutil.copy(tmp_path / "other" / "model.safetensors", tmp_path / name)
    _assert_loads(tmp_path, params)


def test_index_naming_a_missing_or_foreign_shard_names_it(tmp_path):
    _save(tmp_path, 0)
    _shard(str(tmp_path))
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    _one_line_error(MissingFileError, tmp_path,
                    r"model-00002-of-00002\.safetensors: file not found \(a shard named in .*"
                    r"model\.safetensors\.index\.json\)")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"model.norm.weight": "../x.safetensors"}}))
    _one_line_error(ValueError, tmp_path, r"index\.json: weight_map names '\.\./x\.safetensors'")


def test_several_safetensors_and_no_index_are_refused(tmp_path):
    _save(tmp_path, 0)
    _shard(str(tmp_path))
    os.remove(tmp_path / "model.safetensors.index.json")
    _one_line_error(ValueError, tmp_path,
                    rf"{tmp_path}: 2 \*\.safetensors files .* and no "
                    r"model\.safetensors\.index\.json")


def test_one_safetensors_file_of_another_name_is_read(tmp_path):
    params = _save(tmp_path, 0)
    os.rename(tmp_path / "model.safetensors", tmp_path / "weights.safetensors")
    _assert_loads(tmp_path, params)

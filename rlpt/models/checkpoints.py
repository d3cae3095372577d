"""One entry point for any checkpoint: `load_checkpoint(path, dtype) -> (ModelConfig, params)`.

The kind is recognised from the path itself, never from a config field:
  a directory            a HF checkpoint (config.json + *.safetensors; loaders.load_hf_checkpoint)
  a file starting GGUF   a GGUF file, whatever its name (gguf.load_gguf)
  a `.bin` file          a llama2.c checkpoint (loaders.load_llama2c)
Anything else is a one-line ValueError naming the path and the kinds it could have been.
"""
import os

from rlpt.errors import UserError
from rlpt.models.config import ModelConfig
from rlpt.models.gguf import GGUFFile, gguf_model_config, load_gguf
from rlpt.models.loaders import (
    MissingFileError,
    hf_model_config,
    load_hf_checkpoint,
    load_llama2c,
    read_json_file,
)

KINDS = ("hf", "gguf", "llama2c")


def checkpoint_kind(path: str) -> str:
    """"hf", "gguf" or "llama2c" for `path` (module doc); MissingFileError if it does not exist,
    ValueError if it is none of them."""
    if os.path.isdir(path):
        return "hf"
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: checkpoint not found (expected a HF directory, a .gguf "
                               "file or a llama2.c .bin file)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        return "gguf"
    if path.endswith(".gguf"):
        raise UserError(f"{path}: not a GGUF file (starts with {magic!r}, not b'GGUF')")
    if path.endswith(".bin"):
        return "llama2c"
    raise UserError(f"{path}: not a recognised checkpoint: expected a HF directory "
                    "(config.json + *.safetensors), a .gguf file or a llama2.c .bin file")


def has_own_tokenizer(path: str) -> bool:
    """Whether the checkpoint at `path` carries its tokenizer: GGUF tokenizer metadata, or a HF
    directory holding tokenizer.json (a llama2.c file never does)."""
    kind = checkpoint_kind(path)
    if kind == "gguf":
        return GGUFFile(path).get("tokenizer.ggml.tokens", None) is not None
    return kind == "hf" and os.path.isfile(os.path.join(path, "tokenizer.json"))


def checkpoint_config(path: str, dtype: str = "float32") -> ModelConfig:
    """The ModelConfig of the checkpoint at `path` without reading (de-quantising) its weights
    where the format allows it (HF config.json, GGUF metadata)."""
    kind = checkpoint_kind(path)
    if kind == "hf":
        cfg_path = os.path.join(path, "config.json")
        return hf_model_config(read_json_file(cfg_path), dtype, cfg_path)
    if kind == "gguf":
        return gguf_model_config(GGUFFile(path), dtype)
    return load_llama2c(path, dtype)[0]


def load_checkpoint(path: str, dtype: str = "float32", kind: str = "") -> tuple[ModelConfig, dict]:
    """`(ModelConfig, params)` of the checkpoint at `path` (an HF directory, a GGUF file or a
    llama2.c file); params are float32 numpy arrays in rlpt's layout, `dtype` the compute dtype
    of the config. `kind` (optional, e.g. an old config's checkpoint_format) must then be the
    kind the path is. Bad files raise a one-line ValueError naming the file."""
    found = checkpoint_kind(path)
    if kind and kind != found:
        raise UserError(f"{path}: the config says a {kind!r} checkpoint, but this is a "
                        f"{found!r} one (leave the format empty: it is detected)")
    load = {"hf": load_hf_checkpoint, "gguf": load_gguf, "llama2c": load_llama2c}
    return load[found](path, dtype=dtype)

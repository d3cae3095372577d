"""Tokenizers: a fixed character-level vocabulary for synthetic tasks, and real tokenizers
(HF `tokenizer.json`, or the tokenizer inside a GGUF file) with their chat templates.

All expose the same small interface: `encode(str) -> list[int]`, `decode(ids) -> str`,
`vocab_size`, `pad_id`, `bos_id`, `eos_id`. `load_tokenizer(path)` opens any real one (a GGUF
file, an HF directory or a tokenizer.json) with its special tokens and chat template;
`HFTokenizer.apply_chat_template` renders that template with jinja2 the way HF transformers does.
"""
import functools
import json
import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from rlpt.errors import UserError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_CHARS = "0123456789" "+-*/=()., :;?<>#" "abcdefghijklmnopqrstuvwxyz" "[]_|\n!&%"


class CharTokenizer:
    """Character-level tokenizer with a fixed 64-id vocabulary.

    Ids 0..3 are <pad>, <bos>, <eos>, <unk>; then digits, operators, lowercase letters and a few
    punctuation marks. The vocabulary is fixed (not learned) so that every synthetic task and
    every checkpoint trained on them agree on ids.
    """

    specials = (PAD, BOS, EOS, UNK)

    def __init__(self):
        self.itos = list(self.specials) + list(_CHARS)
        assert len(self.itos) == 64, len(self.itos)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = 0, 1, 2, 3

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> List[int]:
        """Maps each character to its id; characters outside the vocabulary raise ValueError."""
        ids = []
        for pos, ch in enumerate(text):
            if ch not in self.stoi:
                raise ValueError(
                    f"character {ch!r} at position {pos} of {text!r} is not in the CharTokenizer "
                    f"vocabulary ({''.join(_CHARS)!r})")
            ids.append(self.stoi[ch])
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], stop_at_eos: bool = True) -> str:
        """Inverse of encode; skips pad/bos and stops at the first eos (if stop_at_eos)."""
        out = []
        for i in np.asarray(list(ids)).tolist():
            if i == self.eos_id and stop_at_eos:
                break
            if i in (self.pad_id, self.bos_id, self.eos_id):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return "".join(out)

    def ids_of(self, chars: str) -> List[int]:
        """Ids of single characters (e.g. the digits), in order."""
        return [self.stoi[c] for c in chars]


class HFTokenizer:
    """Wraps a `tokenizers.Tokenizer` (a HuggingFace `tokenizer.json`, or one built from a GGUF
    file by `load_tokenizer`; no hub access) with its special tokens and chat template.

    `path` is the tokenizer.json file or a directory holding one. A missing file raises
    MissingFileError (a FileNotFoundError and a ValueError); a file that is not a valid
    tokenizer.json raises a one-line ValueError naming the path and the parser's complaint.
    The special tokens are explicit arguments here; `load_tokenizer` reads them (and the chat
    template) from the checkpoint's own files.
    """

    def __init__(self, path: str, bos_token: Optional[str] = None, eos_token: Optional[str] = None,
                 pad_token: Optional[str] = None, chat_template: Optional[str] = None,
                 unk_token: Optional[str] = None, backend=None):
        """`backend`: an already built `tokenizers.Tokenizer` (then `path` only names its
        source in errors; `load_tokenizer` passes the one of a GGUF file)."""
        if backend is None:
            backend = _read_tokenizer_json(path)
            path = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
        self._tok, self.source = backend, path
        vocab = self._tok.get_vocab()

        def lookup(tok, field):
            if tok is None:
                return None
            if tok not in vocab:
                raise ValueError(f"{field}={tok!r} is not in the vocabulary of {path}")
            return vocab[tok]

        self.bos_id = lookup(bos_token, "bos_token")
        self.eos_id = lookup(eos_token, "eos_token")
        self.unk_id = lookup(unk_token, "unk_token")
        pad = lookup(pad_token, "pad_token")
        self.pad_id = pad if pad is not None else (self.eos_id if self.eos_id is not None else 0)
        self.special_tokens = {f"{k}_token": v for k, v in (
            ("bos", bos_token), ("eos", eos_token), ("pad", pad_token), ("unk", unk_token))
            if v is not None}
        self.chat_template = chat_template
        if chat_template is not None:  # a broken template fails here, not mid-run
            self.apply_chat_template([{"role": "user", "content": "Hello"}])

    @property
    def backend(self):
        """The `tokenizers.Tokenizer` (for saving it: `rlpt.export`)."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> List[int]:
        ids = self._tok.encode(text, add_special_tokens=False).ids
        if bos:
            if self.bos_id is None:
                raise ValueError("encode(bos=True) but the tokenizer has no bos_token configured")
            ids = [self.bos_id] + ids
        if eos:
            if self.eos_id is None:
                raise ValueError("encode(eos=True) but the tokenizer has no eos_token configured")
            ids = ids + [self.eos_id]
        return ids

    def decode(self, ids: Sequence[int], stop_at_eos: bool = True) -> str:
        ids = np.asarray(list(ids)).tolist()
        if stop_at_eos and self.eos_id is not None and self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self._tok.decode(ids, skip_special_tokens=True)

    def apply_chat_template(self, messages: Sequence[Dict], add_generation_prompt: bool = True,
                            tokenize: bool = False, **kwargs):
        """The conversation rendered by the checkpoint's own Jinja chat template (a str), or its
        token ids with `tokenize=True` (special tokens in the text map to their ids; no BOS is
        added beyond what the template writes). `kwargs` reach the template (e.g. tools)."""
        if self.chat_template is None:
            raise UserError(f"{self.source}: the tokenizer has no chat template")
        text = render_chat_template(self.chat_template, messages, add_generation_prompt,
                                    self.source, **self.special_tokens, **kwargs)
        return self.encode(text) if tokenize else text

    def save_pretrained(self, directory: str, model_max_length: Optional[int] = None) -> None:
        """Writes tokenizer.json and tokenizer_config.json (special tokens, chat template) as HF
        does, so that `load_tokenizer(directory)` and transformers' AutoTokenizer read back the
        same ids, decoding and chat template."""
        os.makedirs(directory, exist_ok=True)
        self._tok.save(os.path.join(directory, "tokenizer.json"))
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", **self.special_tokens,
               "add_bos_token": False, "add_eos_token": False,
               "clean_up_tokenization_spaces": False}
        if model_max_length:
            cfg["model_max_length"] = model_max_length
        if self.chat_template is not None:
            cfg["chat_template"] = self.chat_template
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2, ensure_ascii=False)


def _read_tokenizer_json(path: str):
    """The `tokenizers.Tokenizer` of a tokenizer.json (or a directory holding one); errors name
    the path."""
    from tokenizers import Tokenizer  # local import: optional for synthetic-only users

    from rlpt.models.loaders import MissingFileError

    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: tokenizer file not found")
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # noqa: BLE001 - the Rust parser raises a bare Exception
        why = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path}: not a valid tokenizer.json ({why})") from None


def render_chat_template(template: str, messages: Sequence[Dict], add_generation_prompt: bool,
                         source: str = "chat template", **variables) -> str:
    """Renders a HF-style Jinja chat template as transformers does: a sandboxed environment
    with trim_blocks and lstrip_blocks, the loop controls extension, `raise_exception`,
    `strftime_now` and a `tojson` filter that keeps non-ASCII text; variables `messages`,
    `add_generation_prompt`, the special tokens (bos_token, ...) and `variables`. A template
    that does not compile or fails to render is a one-line ValueError naming `source`."""
    import jinja2

    variables.setdefault("tools", None)
    variables.setdefault("documents", None)
    try:
        return _compiled_template(template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **variables)
    except jinja2.exceptions.TemplateError as e:
        what = "does not compile" if isinstance(e, jinja2.TemplateSyntaxError) else \
            "failed to render"
        raise UserError(f"{source}: chat template {what} ({type(e).__name__}: "
                        f"{' '.join(str(e).split())})") from None
    except Exception as e:  # noqa: BLE001 - a template may raise anything (KeyError, ...)
        raise UserError(f"{source}: chat template failed to render ({type(e).__name__}: "
                        f"{' '.join(str(e).split())})") from None


@functools.lru_cache(maxsize=16)
def _compiled_template(template: str):
    """The compiled Jinja template (compiling takes ~3 ms, rendering ~20 us: a task renders
    thousands of prompts)."""
    import datetime

    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env.from_string(template)


def _hf_token(value) -> Optional[str]:
    """A special token of tokenizer_config.json: a string or an AddedToken dict."""
    return value.get("content") if isinstance(value, dict) else value


def _hf_tokenizer_config(directory: str) -> dict:
    """Special tokens and chat template of a HF tokenizer directory: tokenizer_config.json
    (special_tokens_map.json filling gaps), the template from chat_template.jinja when present."""
    from rlpt.models.loaders import read_json_file

    cfg = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        fn = os.path.join(directory, name)
        if os.path.isfile(fn):
            cfg.update({k: v for k, v in read_json_file(fn).items() if v is not None})
    template = cfg.get("chat_template")
    if isinstance(template, list):  # [{"name": ..., "template": ...}]: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    jinja_file = os.path.join(directory, "chat_template.jinja")
    if os.path.isfile(jinja_file):
        with open(jinja_file, encoding="utf-8") as f:
            template = f.read()
    out = {k: _hf_token(cfg.get(f"{k}_token")) for k in ("bos", "eos", "pad", "unk")}
    out["chat_template"] = template
    return out


def load_tokenizer(path: str) -> HFTokenizer:
    """The tokenizer of a checkpoint, with its special tokens and chat template:
      a GGUF file            its tokenizer metadata (rlpt.models.gguf_tokenizer)
      a directory            its tokenizer.json + tokenizer_config.json (HF layout)
      a tokenizer.json file  that file (+ tokenizer_config.json beside it, if any)
    Bad files raise a one-line ValueError naming the file (a broken chat template included)."""
    from rlpt.models.loaders import MissingFileError

    if not os.path.exists(path):
        raise MissingFileError(f"{path}: tokenizer not found")
    if _is_gguf(path):
        st = os.stat(path)
        backend, specials, template = _gguf_parts(os.path.abspath(path), st.st_mtime_ns,
                                                  st.st_size)
        return HFTokenizer(path, specials["bos"], specials["eos"], specials["pad"], template,
                           specials["unk"], backend=backend)
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    c = _hf_tokenizer_config(directory)
    return HFTokenizer(path, c["bos"], c["eos"], c["pad"], c["chat_template"], c["unk"])


@functools.lru_cache(maxsize=8)
def _gguf_parts(path: str, mtime_ns: int, size: int):
    """A GGUF file's tokenizer (backend, special tokens, chat template), built once per process
    and file version (about 2.5 s for SmolLM2's 49,152-token BPE): the key holds the file's
    modification time and size, so a rewritten file is read again. The backend is shared by the
    HFTokenizers built from it; rlpt never mutates it."""
    from rlpt.models.gguf import GGUFFile
    from rlpt.models.gguf_tokenizer import gguf_tokenizer
    return gguf_tokenizer(GGUFFile(path))


def _is_gguf(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return path.endswith(".gguf") or f.read(4) == b"GGUF"


def check_tokenizer_fits(tokenizer, vocab_size: int, tokenizer_path: str, model_path: str):
    """ValueError naming both files unless every id of `tokenizer` (its vocabulary and its
    special ids) is a row of the model's `vocab_size`-row embedding. A model may have more rows
    than the tokenizer has tokens (padding rows, as Qwen2.5's), never fewer."""
    ids = {"vocabulary size": int(tokenizer.vocab_size)}
    ids.update({k: v + 1 for k in ("bos_id", "eos_id", "pad_id")
                if (v := getattr(tokenizer, k, None)) is not None})
    for what, need in ids.items():
        if need > vocab_size:
            raise UserError(f"{tokenizer_path}: tokenizer does not match the model {model_path}: "
                            f"its {what} needs {need} embedding rows, the model has "
                            f"{vocab_size}")


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, path: str,
                        specials: Sequence[str] = ("[PAD]", "[BOS]", "[EOS]")) -> str:
    """Trains a byte-level BPE `tokenizer.json` on `texts` and saves it to `path` (specials get
    ids 0, 1, ...). Byte-level, so `decode(encode(s)) == s` for any text. For tests and smoke
    runs that need a real tokenizer without downloading one; returns `path`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.save(path)
    return path

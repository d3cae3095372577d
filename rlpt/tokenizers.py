"""Tokenizers: a fixed character-level vocabulary for synthetic tasks, and HF `tokenizer.json`.

Both expose the same small interface: `encode(str) -> list[int]`, `decode(ids) -> str`,
`vocab_size`, `pad_id`, `bos_id`, `eos_id`.
"""
import os
from typing import Iterable, List, Optional, Sequence

import numpy as np

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
    """Wraps a HuggingFace `tokenizer.json` (via the `tokenizers` library; no hub access).

    `path` is the tokenizer.json file or a directory holding one. A missing file raises
    MissingFileError (a FileNotFoundError and a ValueError); a file that is not a valid
    tokenizer.json raises a one-line ValueError naming the path and the parser's complaint.
    """

    def __init__(self, path: str, bos_token: Optional[str] = None, eos_token: Optional[str] = None,
                 pad_token: Optional[str] = None):
        from tokenizers import Tokenizer  # local import: optional for synthetic-only users

        from rlpt.models.loaders import MissingFileError

        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        if not os.path.isfile(path):
            raise MissingFileError(f"{path}: tokenizer file not found")
        try:
            self._tok = Tokenizer.from_file(path)
        except Exception as e:  # noqa: BLE001 - the Rust parser raises a bare Exception
            why = (str(e).splitlines() or [type(e).__name__])[0]
            raise ValueError(f"{path}: not a valid tokenizer.json ({why})") from None
        vocab = self._tok.get_vocab()

        def lookup(tok, field):
            if tok is None:
                return None
            if tok not in vocab:
                raise ValueError(f"{field}={tok!r} is not in the vocabulary of {path}")
            return vocab[tok]

        self.bos_id = lookup(bos_token, "bos_token")
        self.eos_id = lookup(eos_token, "eos_token")
        pad = lookup(pad_token, "pad_token")
        self.pad_id = pad if pad is not None else (self.eos_id if self.eos_id is not None else 0)

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

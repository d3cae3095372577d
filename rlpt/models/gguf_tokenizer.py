"""The tokenizer section of a GGUF file as a `tokenizers.Tokenizer` (byte-level BPE).

Metadata read (llama.cpp's names):
  tokenizer.ggml.model        "gpt2": GPT-2 byte-level BPE (the only kind supported here)
  tokenizer.ggml.pre          the pre-tokenizer (how text is split before the merges run)
  tokenizer.ggml.tokens       the vocabulary, id order, each token spelled in GPT-2's byte alphabet
  tokenizer.ggml.merges       "left right" merge rules, highest priority first
  tokenizer.ggml.token_type   per token: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
                              6 byte; control tokens become special added tokens (matched whole in
                              text, skipped when decoding), user-defined ones plain added tokens
  tokenizer.ggml.{bos,eos,unknown,padding}_token_id, tokenizer.ggml.add_bos_token
  tokenizer.chat_template     the Jinja chat template

Byte-level BPE (Radford et al. 2019): text is cut into pieces by a regex, each piece's UTF-8
bytes are written with one printable character per byte (`byte_alphabet`), and the merges
join adjacent symbols, lowest rank first. Pre-tokenizers (`PRE_TOKENIZERS`): "gpt2"/"default"
split with GPT-2's regex; "smollm" (and llama.cpp's group with the same rule) first isolates
every numeric character, then applies GPT-2's regex, as llama.cpp does.
"""

from rlpt.errors import UserError
from rlpt.models.gguf import GGUFFile

CONTROL, USER_DEFINED = 3, 4
_DIGITS_THEN_GPT2 = ("smollm", "starcoder", "refact", "codeshell")
PRE_TOKENIZERS = ("default", "gpt2", "gpt-2") + _DIGITS_THEN_GPT2


def byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the other
    68 bytes (controls, space, ...) for the characters U+0100 onwards, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
            *range(ord("\xae"), ord("\xff") + 1)]
    out, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _pre_tokenizer(pre: str, path: str):
    from tokenizers import pre_tokenizers
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in _DIGITS_THEN_GPT2:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in PRE_TOKENIZERS:
        return byte_level
    raise UserError(f"{path}: tokenizer.ggml.pre={pre!r} is not supported; known: "
                    f"{list(PRE_TOKENIZERS)} (use the model's HF tokenizer.json instead)")


def gguf_tokenizer(f: GGUFFile):
    """`(tokenizers.Tokenizer, specials, chat_template)` from an open GGUF file: `specials` maps
    bos/eos/pad/unk to token strings (None when the file names none)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    kind = f.get("tokenizer.ggml.model", None)
    if kind != "gpt2":
        raise UserError(f"{f.path}: tokenizer.ggml.model={kind!r} is not supported (only 'gpt2', "
                        "byte-level BPE)")
    pre = f.get("tokenizer.ggml.pre", "default")
    tokens: list[str] = f.get("tokenizer.ggml.tokens")
    types: list[int] = f.get("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in f.get("tokenizer.ggml.merges")]
    if len(types) != len(tokens) or any(len(m) != 2 for m in merges):
        raise UserError(f"{f.path}: corrupt tokenizer metadata ({len(tokens)} tokens, "
                        f"{len(types)} token types, merges without a space)")
    alphabet = byte_alphabet()
    spelled = set(alphabet.values())
    respell = lambda t: t if set(t) <= spelled else "".join(alphabet[b] for b in t.encode())
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(respell(t), i)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tk.pre_tokenizer = _pre_tokenizer(pre, f.path)
    tk.decoder = decoders.ByteLevel()
    added = lambda kind, special: [AddedToken(t, special=special, normalized=False)
                                   for t, ty in zip(tokens, types) if ty == kind and t in vocab]
    tk.add_special_tokens(added(CONTROL, True))
    tk.add_tokens(added(USER_DEFINED, False))

    def special(name) -> str | None:
        i = f.get(f"tokenizer.ggml.{name}_token_id", None)
        if i is None:
            return None
        if not 0 <= i < len(tokens):
            raise UserError(f"{f.path}: tokenizer.ggml.{name}_token_id={i} is outside the "
                            f"vocabulary of {len(tokens)} tokens")
        return respell(tokens[i])

    specials = {"bos": special("bos"), "eos": special("eos"), "pad": special("padding"),
                "unk": special("unknown")}
    return tk, specials, f.get("tokenizer.chat_template", None)

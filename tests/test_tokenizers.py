"""Character tokenizer and the HF tokenizer.json wrapper (a tokenizer trained in the test)."""
import json

import pytest

from rlpt.tokenizers import CharTokenizer, HFTokenizer


def test_char_roundtrip_and_specials():
    tok = CharTokenizer()
    assert tok.vocab_size == 64 and (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    ids = tok.encode("12+34=46", bos=True, eos=True)
    assert ids[0] == 1 and ids[-1] == 2 and len(ids) == 10
    assert tok.decode(ids) == "12+34=46"
    assert tok.decode(ids + tok.encode("99")) == "12+34=46"  # stops at eos
    assert tok.decode([0, 0] + ids[1:], stop_at_eos=False) == "12+34=46"
    assert len(set(tok.itos)) == 64


def test_char_unknown_character_names_it():
    with pytest.raises(ValueError, match="'Z' at position 2"):
        CharTokenizer().encode("12Z")


def test_hf_tokenizer_trained_in_test(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["[PAD]", "[BOS]", "[EOS]",
                                                                  "[UNK]"])
    corpus = ["the cat sat on the mat", "the dog ate the bone", "a cat and a dog"] * 50
    tk.train_from_iterator(corpus, trainer)
    path = str(tmp_path / "tokenizer.json")
    tk.save(path)
    hf = HFTokenizer(path, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]")
    assert (hf.pad_id, hf.bos_id, hf.eos_id) == (0, 1, 2)
    ids = hf.encode("the cat sat", bos=True, eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert hf.decode(ids) == "the cat sat"
    assert hf.vocab_size <= 200
    with pytest.raises(ValueError, match="not in the vocabulary"):
        HFTokenizer(path, eos_token="<|im_end|>")


def test_load_tokenizer_reads_hf_special_tokens_and_chat_template(tmp_path):
    """A HF tokenizer directory: tokenizer_config.json specials (strings or AddedToken dicts),
    the template from chat_template.jinja over tokenizer_config's, rendered with HF's Jinja
    settings (trim_blocks, lstrip_blocks, tojson keeping non-ASCII)."""
    from rlpt.tokenizers import load_tokenizer, train_bpe_tokenizer
    train_bpe_tokenizer(["the cat sat on the mat"] * 20, 300, str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"content": "[BOS]", "__type": "AddedToken"}, "eos_token": "[EOS]",
        "pad_token": None, "chat_template": "ignored: chat_template.jinja wins"}))
    (tmp_path / "chat_template.jinja").write_text(
        "{{ bos_token }}{% for m in messages %}\n  {% if m['role'] %}\n{{ m['role'] }}: "
        "{{ m['content'] | tojson }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}")
    tok = load_tokenizer(str(tmp_path))
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 2)
    text = tok.apply_chat_template([{"role": "user", "content": "café"}])
    assert text == '[BOS]user: "café"\nassistant:'
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], False).endswith('"x"\n')
    assert load_tokenizer(str(tmp_path / "tokenizer.json")).chat_template == tok.chat_template
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    messages = [{"role": "user", "content": "naïve"}, {"role": "assistant", "content": "ok"}]
    assert hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
        tok.apply_chat_template(messages)

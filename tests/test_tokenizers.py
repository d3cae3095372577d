"""Character tokenizer and the HF tokenizer.json wrapper (a tokenizer trained in the test)."""
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

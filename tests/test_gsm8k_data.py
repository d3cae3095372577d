"""GSM8K on the real files in ../shared/data/gsm8k: reader, TFDS build, prompts and buckets."""
import json
import sys

import numpy as np
import pytest

from rlpt.tasks import gsm8k_data as gsm8k
from rlpt.tasks.prompts import TEMPLATES, bucket_prompts, format_prompt
from rlpt.tokenizers import CharTokenizer


@pytest.fixture(scope="module")
def rows():
    return {split: gsm8k.read_split(split) for split in gsm8k.SPLITS}


def test_row_counts(rows):
    assert len(rows["test"]) == 1319
    assert len(rows["train"]) == 7473


def test_every_answer_is_the_text_of_the_final_hash_line(rows):
    for split, split_rows in rows.items():
        for i, row in enumerate(split_rows):
            last = row["solution"].rstrip("\n").split("\n")[-1]
            assert last.startswith("#### "), (split, i, last)
            assert row["answer"] == last[len("#### "):].strip(), (split, i)
            assert row["answer"].replace(",", "").lstrip("-").isdigit(), (split, i, row["answer"])


def test_rows_match_the_raw_json(rows):
    with open(gsm8k.resolve_source_dir() / "test.jsonl", encoding="utf-8") as f:
        raw = [json.loads(line) for line in f]
    assert [r["question"] for r in rows["test"]] == [r["question"] for r in raw]
    assert [r["solution"] for r in rows["test"]] == [r["answer"] for r in raw]


def test_source_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(gsm8k.ENV_VAR, raising=False)
    assert gsm8k.resolve_source_dir() == gsm8k.DEFAULT_DIR
    for split in gsm8k.SPLITS:
        (tmp_path / f"{split}.jsonl").write_text("")
    monkeypatch.setenv(gsm8k.ENV_VAR, str(tmp_path))
    assert gsm8k.resolve_source_dir() == tmp_path
    assert gsm8k.resolve_source_dir(gsm8k.DEFAULT_DIR) == gsm8k.DEFAULT_DIR
    monkeypatch.setenv(gsm8k.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="RLPT_GSM8K_DIR"):
        gsm8k.resolve_source_dir()


GOOD = '{"question": "q", "answer": "2+2=<<2+2=4>>4\\n#### 4"}'


@pytest.mark.parametrize("bad_line, message", [
    ('{"question": "q", "answer": "no final line"}', "no '#### <final answer>' line"),
    ('{"question": "q", "answer": "x\\n####   "}', "no '#### <final answer>' line"),
    ('{"question": "q", "answer": "x\\n#### 4"', "invalid JSON"),
    ('{"answer": "x\\n#### 4"}', "'question' is missing"),
    ('{"question": "q", "answer": 4}', "'answer' is missing or not a string"),
    ('["q", "x\\n#### 4"]', "expected a JSON object"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([GOOD, "", bad_line, GOOD]) + "\n")
    with pytest.raises(gsm8k.Gsm8kFormatError) as err:
        gsm8k.read_jsonl(path)
    assert str(err.value).startswith(f"{path}:3: ")
    assert message in str(err.value)


def test_reader_skips_blank_lines_and_takes_the_last_hash_line(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("\n" + GOOD + "\n\n" + '{"question": "q", "answer": "#### 1\\n#### 1,200"}\n')
    got = gsm8k.read_jsonl(path)
    assert [r["answer"] for r in got] == ["4", "1,200"]


def test_tfds_build_and_data_source_round_trip(rows, tmp_path):
    sources = gsm8k.build_gsm8k(tmp_path / "tfds")
    assert {s: len(src) for s, src in sources.items()} == {"train": 7473, "test": 1319}
    for split, idx in [("train", 0), ("train", 4000), ("train", 7472), ("test", 0), ("test", 1318)]:
        assert gsm8k.decode_row(sources[split][idx]) == rows[split][idx], (split, idx)
    # Built and read without TensorFlow (the venv has no tensorflow; tfds must not need it).
    assert "tensorflow" not in sys.modules


def test_tfds_build_reads_a_configured_source_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    row = lambda q, a: json.dumps({"question": q, "answer": f"work\n#### {a}"})
    (src / "train.jsonl").write_text(row("q1", 4) + "\n" + row("q2", 5) + "\n")
    (src / "test.jsonl").write_text(row("q3", -3) + "\n")
    sources = gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    assert len(sources["train"]) == 2 and len(sources["test"]) == 1
    assert gsm8k.decode_row(sources["train"][1])["question"] == "q2"
    assert gsm8k.decode_row(sources["test"][0])["answer"] == "-3"


# ----------------------------------------------------------------------------- prompts


class ByteTokenizer:
    """utf-8 bytes + 3 (0 pad, 1 bos, 2 eos): a tokenizer for any text, with known lengths."""
    pad_id, bos_id, eos_id = 0, 1, 2

    def encode(self, text):
        return [b + 3 for b in text.encode("utf-8")]


def test_templates():
    assert format_prompt("What is 2+2?") == "Question: What is 2+2?\nAnswer:"
    chat = format_prompt("What is 2+2?", "qwen2_chat", system="Be brief.")
    assert chat.startswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?")
    assert chat.endswith("<|im_end|>\n<|im_start|>assistant\n") and "\\boxed{}" in chat
    assert format_prompt("{x}", "plain") == "Question: {x}\nAnswer:"  # braces in data are data
    with pytest.raises(KeyError, match="known templates"):
        format_prompt("q", "nope")
    with pytest.raises(KeyError, match="no field"):
        format_prompt("q", "plain", system="s")
    assert set(TEMPLATES) >= {"plain", "qwen2_chat"}


def test_bucketing_left_pads_into_the_smallest_bucket():
    tok = CharTokenizer()
    texts = ["1+1=", "x" * 9, "abc", "y" * 16]
    out = bucket_prompts(texts, tok, (4, 8, 16), rows_multiple=4)
    assert out.dropped == [] and sorted(out.buckets) == [4, 8, 16]
    b4, b8, b16 = out.buckets[4], out.buckets[8], out.buckets[16]
    assert b8.tokens.shape == (0, 8)
    assert b4.tokens.shape == b4.mask.shape == (4, 4) and b4.tokens.dtype == np.int32
    assert b4.index.tolist() == [0, 2, -1, -1]
    assert b4.tokens[1].tolist() == [tok.pad_id] + tok.encode("abc")
    assert b4.mask.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert b16.index.tolist()[:2] == [1, 3] and b16.mask[0].sum() == 9
    assert (b16.tokens[b16.mask == 0] == tok.pad_id).all()


def test_overflow_errors_or_drops_with_a_count():
    tok = CharTokenizer()
    with pytest.raises(ValueError, match=r"prompt 1 has 9 tokens, more than the largest bucket 8"):
        bucket_prompts(["ab", "x" * 9], tok, (4, 8))
    out = bucket_prompts(["ab", "x" * 9, "y" * 8, "z" * 20], tok, (4, 8), on_overflow="drop")
    assert out.dropped == [1, 3] and out.num_dropped == 2
    assert out.buckets[8].index.tolist() == [2]
    with_bos = bucket_prompts(["y" * 8], tok, (4, 8), on_overflow="drop", add_bos=True)
    assert with_bos.dropped == [0]
    with pytest.raises(ValueError, match="increasing"):
        bucket_prompts(["ab"], tok, (8, 4))


def test_bucketing_real_gsm8k_prompts(rows):
    tok = ByteTokenizer()
    questions = [r["question"] for r in rows["test"]]
    texts = [format_prompt(q) for q in questions]
    out = bucket_prompts(texts, tok, (128, 256, 512), on_overflow="drop", add_bos=True)
    lengths = np.array([len(t.encode("utf-8")) + 1 for t in texts])
    for size, lo in [(128, 0), (256, 128), (512, 256)]:
        b = out.buckets[size]
        expect = np.flatnonzero((lengths > lo) & (lengths <= size))
        assert sorted(b.index.tolist()) == expect.tolist()
        assert (b.mask.sum(1) == lengths[b.index]).all()
        for r in range(0, len(b.index), 97):
            ids = b.tokens[r][b.mask[r] == 1]
            assert ids[0] == tok.bos_id
            assert bytes((ids[1:] - 3).tolist()).decode("utf-8") == texts[b.index[r]]
    assert out.dropped == np.flatnonzero(lengths > 512).tolist()
    assert sum(len(b.index) for b in out.buckets.values()) + out.num_dropped == len(texts)


def _tiny_source(path, answers):
    """A GSM8K directory with one train row per answer and one test row."""
    path.mkdir(exist_ok=True)
    row = lambda q, a: json.dumps({"question": q, "answer": f"work\n#### {a}"})
    (path / "train.jsonl").write_text("".join(row(f"q{a}", a) + "\n" for a in answers))
    (path / "test.jsonl").write_text(row("t", 0) + "\n")
    return path


def test_prepared_copy_records_its_source_and_is_reused_while_it_matches(tmp_path, recwarn):
    src = _tiny_source(tmp_path / "src", [1, 2])
    gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    (marker,) = (tmp_path / "tfds").rglob(gsm8k.FINGERPRINT_FILE)
    recorded = json.loads(marker.read_text())
    assert recorded == gsm8k.source_fingerprint(src) and recorded["source_dir"] == str(src)
    info = marker.parent / "dataset_info.json"
    before = info.stat().st_mtime_ns
    copy = _tiny_source(tmp_path / "copy", [1, 2])  # same bytes elsewhere: the same data
    sources = gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=copy, on_stale="error")
    assert info.stat().st_mtime_ns == before and len(sources["train"]) == 2
    assert not [w for w in recwarn if "GSM8K" in str(w.message)]


def test_changed_source_re_prepares_or_fails_naming_both_paths(tmp_path):
    src = _tiny_source(tmp_path / "src", [1, 2])
    gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    other = _tiny_source(tmp_path / "other", [7, 8, 9])
    with pytest.raises(ValueError) as err:
        gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=other, on_stale="error")
    assert str(tmp_path / "tfds") in str(err.value) and str(src) in str(err.value)
    assert str(other) in str(err.value)
    _tiny_source(src, [1, 2, 3])  # edited in place
    with pytest.warns(UserWarning, match="re-preparing"):
        sources = gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    assert [gsm8k.decode_row(sources["train"][i])["answer"] for i in range(3)] == ["1", "2", "3"]


def test_prepared_copy_without_a_fingerprint_is_re_prepared(tmp_path):
    src = _tiny_source(tmp_path / "src", [4])
    gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    (marker,) = (tmp_path / "tfds").rglob(gsm8k.FINGERPRINT_FILE)
    marker.unlink()  # as a copy prepared before fingerprints were recorded
    with pytest.raises(ValueError, match="no source fingerprint"):
        gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src, on_stale="error")
    with pytest.warns(UserWarning, match="no source fingerprint"):
        gsm8k.build_gsm8k(tmp_path / "tfds", source_dir=src)
    assert marker.exists()

"""Preference JSONL data, tokenisation, and pair construction (RLSF, online DPO, sync rule)."""
import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlpt.algorithms import online_dpo, rm_rlsf
from rlpt.losses import preference as LP
from rlpt.tasks.preference_data import (PreferenceDataError, PreferencePair, read_preference_jsonl,
                                        tokenize_pairs, write_preference_jsonl)
from rlpt.tokenizers import CharTokenizer

GOOD = {"prompt": "1+1=", "chosen": "2", "rejected": "3"}


def write_lines(tmp_path, lines, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- JSONL reader ------------------------------------------------------------------------------


def test_read_valid_file_skips_blank_lines(tmp_path):
    lines = [json.dumps(GOOD), "", json.dumps(dict(GOOD, prompt="2+2=", extra=1)), "   "]
    pairs = read_preference_jsonl(write_lines(tmp_path, lines))
    assert [p.prompt for p in pairs] == ["1+1=", "2+2="]
    assert [p.line for p in pairs] == [1, 3]  # blank lines still count in numbering
    assert pairs[0].source.endswith("pairs.jsonl")


@pytest.mark.parametrize("bad,message", [
    ('{"prompt": "a", "chosen": "b", "rejected": ', "malformed JSON"),
    ('["a", "b", "c"]', "expected a JSON object"),
    (json.dumps({"prompt": "a", "chosen": "b"}), "missing field 'rejected'"),
    (json.dumps(dict(GOOD, chosen=3)), "field 'chosen' must be a string"),
    (json.dumps(dict(GOOD, prompt=None)), "field 'prompt' must be a string"),
    (json.dumps(dict(GOOD, rejected="")), "field 'rejected' is empty"),
    (json.dumps(dict(GOOD, chosen="  \n ")), "field 'chosen' is empty"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = write_lines(tmp_path, [json.dumps(GOOD), json.dumps(GOOD), bad, json.dumps(GOOD)])
    with pytest.raises(PreferenceDataError) as err:
        read_preference_jsonl(path)
    text = str(err.value)
    assert str(path) in text and "line 3" in text and message in text


def test_invalid_utf8_and_empty_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"prompt": "\xff"}\n')
    with pytest.raises(PreferenceDataError, match=r"bad\.jsonl, line 2: invalid UTF-8"):
        read_preference_jsonl(path)
    empty = write_lines(tmp_path, ["", " "], name="empty.jsonl")
    with pytest.raises(PreferenceDataError, match="no preference pairs"):
        read_preference_jsonl(empty)


def test_write_read_round_trip(tmp_path):
    pairs = [PreferencePair("q: é?", "a\n\"x\"", "b"), PreferencePair("p", "c", "d")]
    path = tmp_path / "rt.jsonl"
    write_preference_jsonl(path, pairs)
    back = read_preference_jsonl(path)
    assert [(p.prompt, p.chosen, p.rejected) for p in back] == [
        (p.prompt, p.chosen, p.rejected) for p in pairs]


# --- tokenisation ------------------------------------------------------------------------------


def test_tokenize_shapes_padding_and_masks(tmp_path):
    tok = CharTokenizer()
    path = write_lines(tmp_path, [json.dumps(GOOD), json.dumps(
        {"prompt": "12*3=", "chosen": "36", "rejected": "306"})])
    out = tokenize_pairs(read_preference_jsonl(path), tok, max_prompt_len=6, max_response_len=5)
    assert out["prompt_ids"].shape == (2, 6) and out["chosen_ids"].shape == (2, 5)
    assert all(v.dtype == np.int32 for v in out.values())
    # left-padded prompt
    np.testing.assert_array_equal(out["prompt_ids"][0], [0, 0] + tok.encode("1+1="))
    np.testing.assert_array_equal(out["prompt_mask"][0], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(out["prompt_len"], [4, 5])
    # right-padded responses ending in eos (counted in length and mask)
    np.testing.assert_array_equal(out["rejected_ids"][1], tok.encode("306") + [tok.eos_id, 0])
    np.testing.assert_array_equal(out["rejected_mask"][1], [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out["len_w"], [2, 3])
    np.testing.assert_array_equal(out["len_l"], [2, 4])
    assert tok.decode(out["chosen_ids"][1]) == "36"
    no_eos = tokenize_pairs(read_preference_jsonl(path), tok, max_prompt_len=6,
                            max_response_len=5, append_eos=False, bos_id=tok.bos_id)
    np.testing.assert_array_equal(no_eos["len_w"], [1, 2])
    np.testing.assert_array_equal(no_eos["prompt_ids"][0], [0, tok.bos_id] + tok.encode("1+1="))


def test_tokenize_too_long_names_file_and_line(tmp_path):
    tok = CharTokenizer()
    long_resp = dict(GOOD, rejected="123456")
    path = write_lines(tmp_path, [json.dumps(GOOD), json.dumps(long_resp)])
    pairs = read_preference_jsonl(path)
    with pytest.raises(PreferenceDataError) as err:
        tokenize_pairs(pairs, tok, max_prompt_len=8, max_response_len=4)
    assert f"{path}, line 2" in str(err.value) and "'rejected' is 7 tokens" in str(err.value)
    with pytest.raises(PreferenceDataError, match=r"line 1: 'prompt' is 4 tokens"):
        tokenize_pairs(pairs, tok, max_prompt_len=3, max_response_len=8)
    # truncation keeps the end of the prompt and the start of the response
    out = tokenize_pairs(pairs, tok, max_prompt_len=3, max_response_len=4, truncate=True)
    np.testing.assert_array_equal(out["prompt_ids"][0], tok.encode("+1="))
    np.testing.assert_array_equal(out["rejected_ids"][1], tok.encode("1234"))
    np.testing.assert_array_equal(out["len_l"], [2, 4])


def test_tokenize_unknown_character_names_line(tmp_path):
    path = write_lines(tmp_path, [json.dumps(GOOD), json.dumps(dict(GOOD, chosen="TWO"))])
    with pytest.raises(PreferenceDataError, match=r"line 2: cannot tokenize 'chosen'"):
        tokenize_pairs(read_preference_jsonl(path), CharTokenizer(), max_prompt_len=8,
                       max_response_len=8)


# --- RLSF confidence and pairs -----------------------------------------------------------------


def test_token_stats_and_span_confidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32)
    stats = rm_rlsf.token_confidence_stats(jnp.asarray(logits))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ps = np.sort(p, -1)
    np.testing.assert_allclose(stats["top1_prob"], ps[..., -1], rtol=1e-5)
    np.testing.assert_allclose(stats["top2_prob"], ps[..., -2], rtol=1e-5)
    np.testing.assert_allclose(stats["entropy"], -(p * np.log(p)).sum(-1), rtol=1e-5)

    span = np.array([[0, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], np.float32)
    def span_mean(x):  # noqa: E306
        return [x[i][span[i] > 0].mean() if span[i].any() else 0.0 for i in range(3)]
    c1 = rm_rlsf.span_confidence(jnp.asarray(span), "p_top1", top1_prob=stats["top1_prob"])
    np.testing.assert_allclose(c1, span_mean(ps[..., -1]), rtol=1e-5)
    c2 = rm_rlsf.span_confidence(jnp.asarray(span), "p1_minus_p2", top1_prob=stats["top1_prob"],
                            top2_prob=stats["top2_prob"])
    np.testing.assert_allclose(c2, span_mean(ps[..., -1] - ps[..., -2]), rtol=1e-5, atol=1e-7)
    c3 = rm_rlsf.span_confidence(jnp.asarray(span), "neg_entropy", entropy=stats["entropy"],
                            vocab_size=7)
    h = -(p * np.log(p)).sum(-1)
    np.testing.assert_allclose(c3, span_mean(1 - h / math.log(7)), rtol=1e-5)
    assert float(c1[2]) == 0.0  # empty span
    with pytest.raises(ValueError, match="top2_prob"):
        rm_rlsf.span_confidence(jnp.asarray(span), "p1_minus_p2", top1_prob=stats["top1_prob"])
    with pytest.raises(ValueError, match="unknown"):
        rm_rlsf.span_confidence(jnp.asarray(span), "bogus", top1_prob=stats["top1_prob"])


def test_confidence_pairs_against_brute_force():
    conf = np.array([[0.95, 0.5, 0.9, 0.95], [0.2, 0.3, 0.1, 0.85], [0.99, 0.1, 0.97, 0.5]],
                    np.float32)
    smask = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], np.float32)
    a, b, valid = jax.jit(rm_rlsf.confidence_pairs)(jnp.asarray(conf), 0.9, jnp.asarray(smask))
    assert a.shape == b.shape == valid.shape == (3, 6)
    for row in range(3):
        got = {(int(x), int(y)) for x, y, v in zip(a[row], b[row], valid[row]) if v}
        want = {(x, y) for x, y in itertools.permutations(range(4), 2)
                if conf[row, x] >= np.float32(0.9) and conf[row, x] > conf[row, y]
                and smask[row, x] and smask[row, y]}
        assert got == want, row
    # threshold is inclusive (0.9 >= 0.9), equal confidences never pair
    assert (2, 1) in {(int(x), int(y)) for x, y, v in zip(a[0], b[0], valid[0]) if v}
    assert not any(v and {int(x), int(y)} == {0, 3} for x, y, v in zip(a[0], b[0], valid[0]))


def test_confidence_pair_metrics_against_counts():
    """label_agree / label_disagree over the valid pairs, and the within-prompt AUC of
    confidence for correctness over every (right, wrong) sample pair, counted by hand."""
    conf = np.array([[0.95, 0.5, 0.9, 0.95], [0.2, 0.3, 0.1, 0.85]], np.float32)
    r = np.array([[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]], np.float32)
    a, b, valid = rm_rlsf.confidence_pairs(jnp.asarray(conf), 0.9)
    m = {k: float(v) for k, v in rm_rlsf.confidence_pair_metrics(
        jnp.asarray(conf), jnp.asarray(r), a, b, valid).items()}
    # valid pairs (conf_a >= 0.9 and conf_a > conf_b): row 0: 0>1, 0>2, 2>1, 3>1, 3>2 (0 and 3
    # tie); row 1: none (0.85 < 0.9). Right over wrong: none; wrong over right: 0>1, 0>2
    assert m["label_agree"] == 0.0 and m["label_disagree"] == pytest.approx(2 / 5)
    # (right, wrong) pairs: row 0: (1,0) 0.5<0.95, (2,0) 0.9<0.95, (3,0) tie; row 1: (0,1)
    # 0.2<0.3, (0,2) 0.2>0.1, (0,3) 0.2<0.85 -> (0 + 0 + 0.5 + 0 + 1 + 0) / 6
    assert m["confidence_auc_within"] == pytest.approx(1.5 / 6)


# --- online DPO pairs --------------------------------------------------------------------------


def test_best_worst_pairs_ties_and_no_contrast():
    rewards = jnp.array([[0.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5], [3.0, -1.0, 2.0, -1.0],
                         [1.0, 0.0, 5.0, 0.0]])
    smask = jnp.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 1]])
    chosen, rejected, valid = jax.jit(LP.best_worst_pairs)(rewards, smask)
    np.testing.assert_array_equal(chosen, [1, 0, 0, 0])   # lowest index among the best
    np.testing.assert_array_equal(rejected, [0, 0, 1, 1])  # lowest index among the worst
    np.testing.assert_array_equal(valid, [True, False, True, True])  # row 1: no contrast
    # row 3: the masked sample (reward 5) is never chosen

    x = jnp.arange(4 * 4 * 2).reshape(4, 4, 2)
    np.testing.assert_array_equal(LP.take_samples(x, chosen), np.asarray(x)[np.arange(4), chosen])


def test_best_worst_random_tie_break():
    rewards = jnp.array([[1.0, 1.0, 0.0, 1.0, 0.0]])
    seen_best, seen_worst = set(), set()
    for seed in range(24):
        c, r, v = LP.best_worst_pairs(rewards, key=jax.random.PRNGKey(seed))
        seen_best.add(int(c[0]))
        seen_worst.add(int(r[0]))
        assert bool(v[0])
    assert seen_best == {0, 1, 3} and seen_worst == {2, 4}


def test_should_sync():
    assert all(online_dpo.should_sync(k, 1) for k in range(5))
    assert [online_dpo.should_sync(k, 3) for k in range(7)] == [True, False, False, True, False,
                                                                False, True]
    assert not any(online_dpo.should_sync(k, None) for k in range(5))
    assert not any(online_dpo.should_sync(k, math.inf) for k in range(5))
    assert online_dpo.should_sync(4, 2.0)
    np.testing.assert_array_equal(online_dpo.should_sync(jnp.arange(4), 2),
                                  [True, False, True, False])
    for bad in (0, -1, 1.5, True, -math.inf):
        with pytest.raises(ValueError):
            online_dpo.should_sync(1, bad)
    with pytest.raises(ValueError, match="step"):
        online_dpo.should_sync(-1, 1)

"""The function_call task (ToolRL, arXiv 2504.13958; issue 27, claim 10): batches keep held-out tool
pairs out of training, and both on-device rewards equal their plain-Python references on gold,
mutated and malformed completions, with hand-computed values of ToolRL's fine-grained reward."""
import numpy as np
import pytest

from rlpt.registry import get
from rlpt.tasks import function_call_reward as fc
from rlpt.tasks.function_call import TOOLS, FunctionCallTask, parse_pairs

TOK = FunctionCallTask().tokenizer


def _rows(texts, width=72, terminated=None):
    """Completions as token rows: the text, then eos (unless not terminated), then padding."""
    n = len(texts)
    tokens, mask = np.zeros((n, width), np.int32), np.zeros((n, width), np.int32)
    for i, text in enumerate(texts):
        ids = TOK.encode(text) + ([] if terminated is not None and not terminated[i]
                                  else [TOK.eos_id])
        tokens[i, :len(ids)], mask[i, :len(ids)] = ids, 1
    return tokens, mask


def _score(name, texts, gold):
    tokens, mask = _rows(texts)
    target = np.asarray([fc.gold_row(gold)] * len(texts), np.int32)
    r, aux = get("reward", name)(tokens, mask, target, np.full(len(texts), len(gold), np.int32))
    return np.asarray(r), aux


GOLD = [("sum", [("a", "12"), ("b", "7")]), ("rev", [("w", "ab")])]


@pytest.mark.parametrize("text,expected", [
    ("sum(a=12,b=7)|rev(w=ab)", 4.0),            # exact: 1 + 6 * 6/6 - 3
    ("rev(w=ab)|sum(a=12,b=7)", 4.0),            # matched by name, order-free like ToolRL's
    ("sum(a=12,b=8)", 0.5),                      # names 1/2; sum: keys 1 + values 1; of 6
    ("sum(a=12,c=7)|rev(w=ab)", 1 + 13 / 3 - 3),  # sum: keys 1/3 + values 1; rev 2; names 1
    ("sum(a=12,b=7)|sum(a=12,b=7)", 1 + 10 / 3 - 3),  # names 1/(2 + 2 - 1); sum 1 + 2; no rev
    ("mul(a=12,b=7)", -2.0),                     # no gold name: only the format point
    ("sum(a=12,b=7)|", -3.0),                    # not well-formed: -3
    ("sum(a=12,a=7)", -3.0),                     # a key twice in one call
    ("", -3.0),
])
def test_fine_grained_hand_values(text, expected):
    r, _ = _score("toolrl_fine_grained", [text], GOLD)
    assert r[0] == pytest.approx(expected, abs=1e-5)
    assert fc.fine_grained_reference(text, True, GOLD) == pytest.approx(expected, abs=1e-5)


def _mutations(rng, gold_text):
    """Gold completions with one or two edits from an alphabet of the grammar's characters."""
    alphabet = "abcdefgnrsuvwxz0123456789()=,|;"
    out = [gold_text]
    for _ in range(60):
        t = list(gold_text)
        for _ in range(int(rng.integers(1, 3))):
            op, pos = rng.integers(3), int(rng.integers(len(t) + 1))
            ch = alphabet[int(rng.integers(len(alphabet)))]
            if op == 0 and t:
                del t[min(pos, len(t) - 1)]
            elif op == 1:
                t.insert(pos, ch)
            elif t:
                t[min(pos, len(t) - 1)] = ch
        out.append("".join(t))
    parts = gold_text.split("|")
    out += ["|".join(reversed(parts)), parts[0], gold_text + "|" + parts[0],
            "|".join(parts * 2), gold_text.replace("=", "")]
    return out


def test_rewards_equal_the_python_references():
    task, rng = FunctionCallTask(), np.random.default_rng(0)
    batch = task.eval_set(30)
    checked = {"exact": 0, "partial": 0, "malformed": 0}
    for i in range(30):
        gold = task.gold_calls(task.example(batch, i))
        texts = _mutations(rng, TOK.decode(batch["solution"][i]))
        term = [True] * len(texts)
        term[-1] = False                           # one unterminated completion
        tokens, mask = _rows(texts, terminated=term)
        target = np.repeat(batch["target"][i:i + 1], len(texts), 0)
        target_len = np.full(len(texts), batch["target_len"][i], np.int32)
        fine, aux = get("reward", "toolrl_fine_grained")(tokens, mask, target, target_len)
        exact, _ = get("reward", "function_call")(tokens, mask, target, target_len)
        for j, text in enumerate(texts):
            want = fc.fine_grained_reference(text, term[j], gold)
            assert float(fine[j]) == pytest.approx(want, abs=1e-5), (text, gold)
            assert float(exact[j]) == fc.exact_reference(text, term[j], gold), (text, gold)
            assert float(aux["exact"][j]) == float(exact[j])
            assert float(exact[j]) == task.reference_reward(text, task.example(batch, i),
                                                            term[j])
            checked["exact" if want == 4 else "malformed" if want == -3 else "partial"] += 1
    assert min(checked.values()) >= 30, checked     # every branch exercised


def test_held_out_pairs_never_train_and_eval_reports_each_kind():
    task = FunctionCallTask(heldout="0-3,1-4,2-5")
    words = {word: i for i, (_, word, _) in enumerate(TOOLS)}

    def pair(prompt):
        tools = [words[r.split()[0]] for r in prompt.rstrip("?").split(";")]
        return tuple(sorted(tools)) if len(tools) == 2 else None

    seen = {pair(p) for s in range(20) for p in task.decode_prompt(task.make_batch(0, s, 64)["prompt"])}
    assert seen - {None} == set(task.seen) and not seen & set(task.heldout)
    ev = task.eval_set(90)
    kinds = ev["difficulty"]
    assert list(np.bincount(kinds)) == [30, 30, 30]
    for p, k in zip(task.decode_prompt(ev["prompt"]), kinds):
        assert (pair(p) is None) == (k == 0)
        if k:
            assert (pair(p) in task.heldout) == (k == 2)
    r, _ = get("reward", "function_call")(ev["solution"], ev["solution_mask"], ev["target"],
                                         ev["target_len"])
    assert np.all(np.asarray(r) == 1.0)             # the gold solutions score 1


def test_bad_knobs_name_the_field():
    with pytest.raises(ValueError, match="heldout"):
        parse_pairs("0-0")
    with pytest.raises(ValueError, match="leaves no pair"):
        FunctionCallTask(heldout=",".join(f"{i}-{j}" for i in range(6) for j in range(i + 1, 6)))
    with pytest.raises(ValueError, match="single_frac"):
        FunctionCallTask(single_frac=1.5)

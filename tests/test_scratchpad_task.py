"""The scratchpad addition task (rlpt.tasks.scratchpad) and its on-device reward
(rlpt.tasks.scratchpad_reward), checked against the plain-Python reference."""
import jax
import numpy as np
import pytest

from rlpt import registry
from rlpt.tasks import scratchpad as sp
from rlpt.tasks import scratchpad_reward as rw
from rlpt.tasks.synthetic_reward import completion_text
from rlpt.tokenizers import CharTokenizer

TOK = CharTokenizer()
EOS, PAD = TOK.eos_id, TOK.pad_id
REWARD = jax.jit(rw.scratchpad_answer_reward)  # one compilation per shape, not one per op


def enc(text):
    """`$` = eos, `~` = pad; everything else a character."""
    return [EOS if c == "$" else PAD if c == "~" else TOK.stoi[c] for c in text]


def rows(id_lists, width):
    comp = np.zeros((len(id_lists), width), np.int32)
    mask = np.zeros((len(id_lists), width), np.int32)
    for i, ids in enumerate(id_lists):
        ids = ids[:width]
        comp[i, :len(ids)], mask[i, :len(ids)] = ids, 1
    return comp, mask


def device_reward(comp, mask, answers, width, gold_len=None):
    target = np.zeros((len(answers), width + 1), np.int32)
    for i, ans in enumerate(answers):
        target[i, :len(ans)] = TOK.encode(ans)
    if gold_len is not None:
        target[:, -1] = gold_len
    tl = np.array([len(a) for a in answers], np.int32)
    r, aux = REWARD(comp, mask, target, tl)
    return np.asarray(r), {k: np.asarray(v) for k, v in aux.items()}


def reference(comp, mask, answers):
    out = []
    for i, ans in enumerate(answers):
        text, term = completion_text(comp[i], mask[i])
        r, fmt = rw.scratchpad_reference(text, term, ans)
        valid = np.cumprod(mask[i] != 0)
        eos = [j for j in range(len(valid)) if valid[j] and comp[i, j] == EOS]
        length = eos[0] + 1 if eos else int(valid.sum())
        out.append((r, fmt, length))
    return np.array(out)


def test_registered_and_worked_example():
    task = registry.get("task", "scratchpad_addition")(max_digits=3)
    assert registry.get("reward", task.reward_name) is rw.scratchpad_answer_reward
    assert sp.worked_solution(457, 68) == "7+8=15,5+6+1=12,4+1=5#525"
    assert sp.worked_solution(3, 4) == "3+4=7#7"
    assert sp.worked_solution(999, 1) == "9+1=10,9+1=10,9+1=10#1000"


def test_hand_cases_correct_wrong_truncated_padded():
    cases = [  # (completion, answer, expected reward)
        ("7+8=15,5+6+1=12,4+1=5#525$", "525", 1.0),      # the worked solution
        ("#525$", "525", 1.0),                             # no chain at all
        ("blah blah,,,,;;#999#525$", "525", 1.0),          # rambling, an earlier marker
        ("7+8=15~~~~~#525$~~#1", "525", 1.0),              # pad tokens in the chain, junk after eos
        ("7+8=15,5+6+1=12,4+1=5#526$", "525", 0.0),        # wrong answer
        ("7+8=15,5+6+1=12,4+1=5#0525$", "525", 0.0),       # leading zero
        ("7+8=15,5+6+1=12,4+1=5#525 $", "525", 0.0),       # trailing space
        ("7+8=15,5+6+1=12,4+1=5#52", "525", 0.0),          # truncated before the answer ends
        ("7+8=15,5+6+1=12,4+1=5#525", "525", 0.0),         # truncated: no eos
        ("525$", "525", 0.0),                              # no marker
        ("#525#$", "525", 0.0),                            # nothing after the last marker
        ("#1000$", "1000", 1.0),
    ]
    comp, mask = rows([enc(c) for c, _, _ in cases], 40)
    answers = [a for _, a, _ in cases]
    r, aux = device_reward(comp, mask, answers, 5)
    np.testing.assert_array_equal(r, [e for _, _, e in cases])
    ref = reference(comp, mask, answers)
    np.testing.assert_array_equal(r, ref[:, 0])
    np.testing.assert_array_equal(aux["format_ok"], ref[:, 1].astype(bool))
    np.testing.assert_array_equal(aux["response_len"], ref[:, 2])
    # a hole in the mask ends the completion: the eos after it does not count
    comp, mask = rows([enc("#525$")], 8)
    mask[0, 1] = 0
    assert device_reward(comp, mask, ["525"], 5)[0][0] == 0.0  # (a new shape: compiles)


def test_reward_matches_reference_on_random_strings():
    """>= 500 random completions: mutated worked solutions and random strings over the
    characters that matter (digits, `#`, `+=,`, eos, pad), with random mask holes."""
    rng = np.random.default_rng(0)
    task = sp.ScratchpadAdditionTask(max_digits=4)
    batch = task.make_batch(1, 0, 200)
    alphabet = enc("0123456789#+=,$~") + [TOK.stoi["a"]]
    comps, answers, gold = [], [], []
    for i in range(600):
        j = i % 200
        ans = TOK.decode(batch["target"][j][: batch["target_len"][j]])
        sol = [int(t) for t, m in zip(batch["solution"][j], batch["solution_mask"][j]) if m]
        kind = i % 4
        if kind == 0:    # the solution with k random token edits
            ids = list(sol)
            for _ in range(int(rng.integers(0, 3))):
                ids[int(rng.integers(len(ids)))] = int(rng.choice(alphabet))
        elif kind == 1:  # truncated or extended
            ids = sol[: int(rng.integers(1, len(sol) + 1))] + [
                int(rng.choice(alphabet)) for _ in range(int(rng.integers(0, 4)))]
        elif kind == 2:  # random chain then a (maybe) right answer
            ids = [int(rng.choice(alphabet)) for _ in range(int(rng.integers(0, 20)))]
            ids += enc("#" + (ans if rng.random() < 0.6 else str(int(ans) + 1)) + "$")
        else:            # random string
            ids = [int(rng.choice(alphabet)) for _ in range(int(rng.integers(0, 40)))]
        comps.append(ids)
        answers.append(ans)
        gold.append(len(sol))
    comp, mask = rows(comps, 48)
    holes = rng.random(mask.shape) < 0.01
    mask[holes] = 0
    r, aux = device_reward(comp, mask, answers, task.target_width - 1, np.array(gold))
    ref = reference(comp, mask, answers)
    np.testing.assert_array_equal(r, ref[:, 0])
    np.testing.assert_array_equal(aux["format_ok"], ref[:, 1].astype(bool))
    np.testing.assert_array_equal(aux["response_len"], ref[:, 2])
    assert 0.15 < r.mean() < 0.85  # both outcomes are exercised
    ok = r > 0.5
    np.testing.assert_allclose(aux["response_len_correct"], ref[ok, 2].mean(), rtol=1e-6)
    np.testing.assert_allclose(aux["response_len_wrong"], ref[~ok, 2].mean(), rtol=1e-6)
    excess = ref[:, 2] - np.array(gold)
    np.testing.assert_allclose(aux["excess_len_correct"], excess[ok].mean(), rtol=1e-5)
    np.testing.assert_allclose(aux["excess_len_wrong"], excess[~ok].mean(), rtol=1e-5)


@pytest.mark.parametrize("knobs", [dict(min_digits=1, max_digits=3),
                                   dict(min_digits=2, max_digits=4, hard_max_digits=7)])
def test_sft_solutions_score_one_and_match_python(knobs):
    task = sp.ScratchpadAdditionTask(**knobs)
    b = task.make_batch(0, 3, 256)
    r, _ = REWARD(b["solution"], np.ones_like(b["solution_mask"]), b["target"],
                       b["target_len"])
    np.testing.assert_array_equal(np.asarray(r), 1.0)   # every worked solution, hard rows too
    for i in range(256):
        a, bb = (int(x) for x in task.decode_prompt(b["prompt"][i]).rstrip("=").split("+"))
        sol = TOK.decode(b["solution"][i])
        assert sol == sp.worked_solution(a, bb) and sol.endswith("#" + str(a + bb))
        assert TOK.decode(b["target"][i][: b["target_len"][i]]) == str(a + bb)
        assert b["target"][i][-1] == len(sol) + 1 and (b["target"][i][b["target_len"][i]:-1] == 0).all()
        assert b["difficulty"][i] == max(len(str(a)), len(str(bb)))
        assert knobs["min_digits"] <= min(len(str(a)), len(str(bb)))
        hard = b["difficulty"][i] > knobs["max_digits"]
        assert b["solution_mask"][i].sum() == len(sol) + 1   # RL batches keep every solution
        assert task.sft_batch(0, 3, 256)["solution_mask"][i].sum() == (0 if hard else len(sol) + 1)
        assert task.reference_reward(sol, task.example(b, i)) == 1.0


def test_batches_deterministic_lengths_vary_and_hard_split():
    task = sp.ScratchpadAdditionTask(max_digits=3)
    b1, b2 = task.make_batch(5, 7, 128), task.make_batch(5, 7, 128)
    for k in b1:
        np.testing.assert_array_equal(b1[k], b2[k])
        assert b1[k].dtype == np.int32
    assert not np.array_equal(b1["prompt"], task.make_batch(5, 8, 128)["prompt"])
    lengths = b1["solution_mask"].sum(1)
    assert len(set(lengths.tolist())) >= 8 and lengths.min() >= 8
    assert lengths.max() <= task.solution_len == sp.max_solution_tokens(3)
    assert set(b1["difficulty"].tolist()) == {1, 2, 3}
    hard = sp.ScratchpadAdditionTask(max_digits=3, hard_max_digits=6, hard_frac=0.5)
    hb = hard.make_batch(0, 0, 1000)
    is_hard = hb["difficulty"] > 3
    assert 0.45 < is_hard.mean() < 0.55
    assert set(hb["difficulty"][is_hard].tolist()) == {4, 5, 6}
    sb = hard.sft_batch(0, 0, 1000)   # the warm-up: no SFT data on hard rows
    assert (sb["solution_mask"][is_hard] == 0).all()
    assert (sb["solution_mask"][~is_hard].sum(1) > 0).all()
    assert (hb["solution_mask"].sum(1) > 0).all()   # RL batches: every gold solution (guidance)
    for k in hb:
        if k != "solution_mask":
            np.testing.assert_array_equal(sb[k], hb[k])
    keep = sp.ScratchpadAdditionTask(max_digits=3, hard_max_digits=6, hard_solutions=True)
    assert (keep.sft_batch(0, 0, 100)["solution_mask"].sum(1) > 0).all()
    with pytest.raises(ValueError):
        sp.ScratchpadAdditionTask(max_digits=3, hard_max_digits=3)
    with pytest.raises(ValueError):
        task.eval_set(4, seed=1)


def test_accuracy_by_difficulty():
    from rlpt.evaluation.metrics import by_difficulty, pass_at_k
    greedy = np.array([1, 0, 1, 1, 0])
    samples = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    diff = np.array([1, 1, 2, 3, 3])
    out = by_difficulty(greedy, samples, diff, 4)
    assert out["greedy_acc_d1"] == 0.5 and out["greedy_acc_d2"] == 1.0
    assert out["pass@1_d1"] == 0.125 and out["pass@4_d1"] == 0.5 and out["pass@4_d3"] == 0.5
    assert out["pass@1_d3"] == pass_at_k(4, 1, 1) / 2
    assert len(out) == 9

"""Synthetic tasks (rlpt.tasks.synthetic) and their on-device rewards (rlpt.tasks.synthetic_reward).

Completions in hand-written cases use a compact notation: `$` = eos, `~` = pad, `@` = bos; every
character is inside the mask and the row is padded (mask 0) to a common width.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlpt import registry
from rlpt.tasks import synthetic_reward as rw
from rlpt.tasks import synthetic as st  # noqa: F401  (registers the tasks and rewards)
from rlpt.tokenizers import CharTokenizer

TOK = CharTokenizer()
KEYS = {"prompt", "prompt_mask", "target", "target_len", "solution", "solution_mask"}
CONFIGS = {
    "addition": ("addition", {}),
    "multiplication": ("multiplication", {"max_digits_b": 2}),
    "countdown": ("countdown", {}),
    "countdown_div": ("countdown", {"min_numbers": 2, "max_numbers": 4, "allow_division": True}),
}


def make_task(config):
    name, knobs = CONFIGS[config]
    return registry.get("task", name)(**knobs)


def encode(text):
    """Compact notation -> token ids ($ eos, ~ pad, @ bos)."""
    special = {"$": TOK.eos_id, "~": TOK.pad_id, "@": TOK.bos_id}
    return [special[c] if c in special else TOK.stoi[c] for c in text]


def rows(id_lists, width):
    """Right-pads token id lists to [N, width] with mask 1 exactly on the given ids."""
    comp = np.zeros((len(id_lists), width), np.int32)
    mask = np.zeros((len(id_lists), width), np.int32)
    for i, ids in enumerate(id_lists):
        comp[i, :len(ids)], mask[i, :len(ids)] = ids, 1
    return comp, mask


def reward_of(task, texts, target, target_len, width=16):
    comp, mask = rows([encode(t) for t in texts], width)
    n = len(texts)
    r, aux = task.reward(comp, mask, np.repeat(target[None], n, 0), np.full((n,), target_len))
    return np.asarray(r), {k: np.asarray(v) for k, v in aux.items()}


def test_registry_names():
    assert {"addition", "multiplication", "countdown"} <= set(registry.names("task"))
    rewards = set(registry.names("reward"))
    assert {"addition", "multiplication", "exact_answer", "countdown"} <= rewards
    assert registry.get("reward", "addition") is rw.exact_answer_reward
    for config in CONFIGS:
        task = make_task(config)
        fn = registry.get("reward", task.reward_name)
        assert fn in (rw.exact_answer_reward, rw.countdown_reward)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_batches_deterministic_static_and_well_formed(config):
    task = make_task(config)
    b1, b2 = task.make_batch(3, 5, 64), task.make_batch(3, 5, 64)
    others = [task.make_batch(3, 6, 64), task.make_batch(4, 5, 64), task.make_batch(7, 0, 64)]
    assert set(b1) == KEYS
    for k in KEYS:
        np.testing.assert_array_equal(b1[k], b2[k])
        for other in others:
            assert other[k].shape == b1[k].shape and other[k].dtype == np.int32 == b1[k].dtype
    assert b1["prompt"].shape == (64, task.prompt_len)
    assert b1["target"].shape == (64, task.target_width)
    assert b1["solution"].shape == (64, task.solution_len)
    assert all(not np.array_equal(b1["prompt"], o["prompt"]) for o in others)

    prompt, pm = b1["prompt"], b1["prompt_mask"]
    np.testing.assert_array_equal(pm, (prompt != TOK.pad_id).astype(np.int32))
    assert np.all(np.diff(pm, axis=1) >= 0), "prompts must be left-padded"
    first = np.argmax(pm, axis=1)
    assert np.all(prompt[np.arange(64), first] == TOK.bos_id)
    assert np.sum(prompt == TOK.bos_id) == 64 and np.all(prompt != TOK.eos_id)
    sol, sm = b1["solution"], b1["solution_mask"]
    assert np.all(np.diff(sm, axis=1) <= 0), "solutions must be right-padded"
    last = sm.sum(1) - 1
    assert np.all(sol[np.arange(64), last] == TOK.eos_id) and np.sum(sol == TOK.eos_id) == 64
    np.testing.assert_array_equal(sm, (sol != TOK.pad_id).astype(np.int32))


@pytest.mark.parametrize("config", ["addition", "multiplication"])
def test_arithmetic_prompts_match_targets(config):
    task = make_task(config)
    batch = task.make_batch(0, 1, 256)
    op = task.symbol
    lens_a, lens_b = set(), set()
    for i, text in enumerate(task.decode_prompt(batch["prompt"])):
        assert text.endswith("=") and text.count(op) == 1, text
        a, b = text[:-1].split(op)
        lens_a.add(len(a)), lens_b.add(len(b))
        answer = str(int(a) + int(b) if op == "+" else int(a) * int(b))
        n = batch["target_len"][i]
        assert TOK.decode(batch["target"][i, :n]) == answer and np.all(batch["target"][i, n:] == 0)
        assert task.decode_completion(batch["solution"][i], batch["solution_mask"][i]) == answer
    assert lens_a == set(range(task.digits_a[0], task.digits_a[1] + 1))
    assert lens_b == set(range(task.digits_b[0], task.digits_b[1] + 1))


@pytest.mark.parametrize("config", ["countdown", "countdown_div"])
def test_countdown_prompts_match_targets_and_solutions(config):
    task = make_task(config)
    batch = task.make_batch(0, 1, 256)
    ops_seen, ks = set(), set()
    for i, text in enumerate(task.decode_prompt(batch["prompt"])):
        nums, goal = text[:-1].split(">")
        numbers, goal = [int(x) for x in nums.split(",")], int(goal)
        k = int(batch["target_len"][i])
        ks.add(k)
        assert text.endswith(":") and len(numbers) == k
        assert batch["target"][i, 0] == goal and list(batch["target"][i, 1:1 + k]) == numbers
        assert np.all(batch["target"][i, 1 + k:] == -1)
        assert all(task.min_number <= x <= task.max_number for x in numbers)
        assert 1 <= goal <= task.max_target
        # The worked solution uses every number exactly once and evaluates to the goal.
        sol = task.decode_completion(batch["solution"][i], batch["solution_mask"][i])
        literals, ops = rw.parse_countdown(sol)
        assert sorted(literals) == sorted(numbers) and rw.evaluate_countdown(literals, ops) == goal
        ops_seen.update(ops)
    assert ks == set(range(task.min_numbers, task.max_numbers + 1))
    assert ops_seen == ({"+", "-", "*", "/"} if task.allow_division else {"+", "-", "*"})


@pytest.mark.parametrize("config", list(CONFIGS))
def test_worked_solutions_score_one(config):
    task = make_task(config)
    batch = task.make_batch(1, 0, 256)
    r, aux = task.reward(batch["solution"], batch["solution_mask"], batch["target"],
                         batch["target_len"])
    assert r.shape == (256,) and r.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(r), 1.0)
    assert np.all(np.asarray(aux["format_ok"]))
    for i in range(0, 256, 17):
        text = task.decode_completion(batch["solution"][i], batch["solution_mask"][i])
        assert task.reference_reward(text, task.example(batch, i)) == 1.0
        assert task.reference_reward(text, task.example(batch, i), terminated=False) == 0.0


def test_exact_answer_rejects_wrong_completions():
    task = make_task("addition")
    target, n = np.array(encode("579") + [0], np.int32), 3  # target_width 4
    cases = {
        "579$": (1, True), "579$12": (1, True), "579$$": (1, True),  # text ends at first eos
        "578$": (0, True), "479$": (0, True), "57$": (0, True), "5790$": (0, True),
        "0579$": (0, True), "5791$": (0, True), "57$9": (0, True), "$": (0, False),
        "579": (0, False), "579~": (0, False), "579 $": (0, False), "579+$": (0, False),
        " 579$": (0, False), "579=$": (0, False), "abc$": (0, False), "@579$": (0, False),
        "5~79$": (0, False), "$579$": (0, False),
    }
    texts = list(cases)
    r, aux = reward_of(task, texts, target, n)
    for t, (want, fmt), got, got_fmt in zip(texts, cases.values(), r, aux["format_ok"]):
        assert (got, got_fmt) == (want, fmt), t
    # Masked-out eos is no eos; a mask hole ends the completion; too-narrow buffers score 0.
    comp, mask = rows([encode("579$"), encode("579$")], 6)
    mask[0, 3] = 0
    mask[1, 1] = 0
    r, _ = task.reward(comp, mask, np.stack([target] * 2), np.array([n, n]))
    np.testing.assert_array_equal(np.asarray(r), [0.0, 0.0])
    comp, mask = rows([encode("57")], 2)
    r, aux = task.reward(comp, mask, target[None], np.array([n]))
    assert float(r[0]) == 0.0 and not bool(aux["format_ok"][0])


def test_numeric_answer_accepts_leading_zeros_and_matches_its_reference():
    """`answer_check="numeric"`: `0579` and `00579` score for 579, everything exact_answer
    rejects for another reason still scores 0; the host reference agrees on every case."""
    task = st.AdditionTask(answer_check="numeric")
    cases = {"579$": 1, "0579$": 1, "00579$": 1, "579$12": 1, "0578$": 0, "5790$": 0,
             "057$": 0, "0$": 0, "00$": 0, "$": 0, "0579": 0, "0 579$": 0, "+579$": 0,
             "05~79$": 0}
    zero = dict({t: 0 for t in cases}, **{"0$": 1, "00$": 1, "000$": 1})
    for answer, target_len, want in (("579", 3, cases), ("0", 1, zero)):
        target = np.array(encode(answer) + [0] * (4 - len(answer)), np.int32)
        texts = list(want)
        r, aux = reward_of(task, texts, target, target_len)
        for t, got, lead in zip(texts, r, aux["leading_zero"]):
            text, terminated = rw.completion_text(encode(t))
            assert got == want[t] == rw.numeric_answer_reference(text, terminated, answer)[0], (
                answer, t)
            assert lead == (terminated and len(text) > 1 and text[0] == "0"
                            and text.isdigit()), t
    # the exact check and the padded demonstrations: half of the demos zero-padded, each worked
    # solution right under the numeric check, the padded ones wrong under the exact one
    b = st.AdditionTask(1, 2, padded_fraction=0.5, answer_check="numeric").make_batch(0, 0, 64)
    sol, m = b["solution"], b["solution_mask"]
    numeric, aux = st.AdditionTask(answer_check="numeric", max_digits=2).reward(
        sol, m, b["target"], b["target_len"])
    exact, _ = st.AdditionTask(max_digits=2).reward(sol, m, b["target"], b["target_len"])
    padded = np.asarray(aux["leading_zero"])
    assert np.all(np.asarray(numeric) == 1) and 16 < padded.sum() < 48
    np.testing.assert_array_equal(np.asarray(exact), 1 - padded)
    assert {len(TOK.decode(sol[i][m[i] > 0])) for i in np.flatnonzero(padded)} == {3}
    with pytest.raises(ValueError, match="answer_check='loose'"):
        st.AdditionTask(answer_check="loose")


def countdown_case(texts, numbers, goal):
    task = make_task("countdown_div")
    target = np.array([goal] + numbers + [-1, -1], np.int32)  # the reward ignores the padding
    r, aux = reward_of(task, texts, target, len(numbers))
    ref = []
    for t in texts:
        text, terminated = rw.completion_text(encode(t))
        ref.append(rw.countdown_reference(text, terminated, numbers, goal))
    return r, aux, ref


@pytest.mark.parametrize("text,numbers,goal,want", [
    ("2+3*4$", [2, 3, 4], 14, 1), ("2+3*4$", [2, 3, 4], 20, 0), ("2*3+4$", [2, 3, 4], 10, 1),
    ("4-3*2$", [2, 3, 4], -2, 1), ("2-3-4$", [2, 3, 4], -5, 1), ("2-3-4$", [2, 3, 4], 3, 0),
    ("8/4*2$", [8, 4, 2], 4, 1), ("2*8/4$", [8, 4, 2], 4, 1), ("8-4/2$", [8, 4, 2], 6, 1),
    ("8/2/4$", [8, 4, 2], 1, 1), ("2+8/4*2-3$", [2, 8, 4, 2, 3], 3, 1),
    ("3*5$", [3, 5, 7], 15, 1), ("7$", [3, 5, 7], 7, 1), ("3*5+7$", [3, 5, 7], 22, 1),
    ("3*3$", [3, 5], 9, 0), ("3*3$", [3, 3, 5], 9, 1), ("3*3*3$", [3, 3, 5], 27, 0),  # multiset
    ("35$", [3, 5], 35, 0), ("12$", [1, 2], 12, 0), ("6$", [3, 5], 6, 0),  # literals must be given
    ("7/2*4$", [7, 2, 4], 14, 0), ("7/2$", [7, 2], 3, 0), ("4*7/2$", [7, 2, 4], 14, 1),  # exact /
    ("5/0$", [5, 0], 0, 0), ("0/5$", [5, 0], 0, 1),  # zero divisor rejected, zero dividend fine
    ("03+4$", [3, 4], 7, 0), ("3+4", [3, 4], 7, 0), ("$", [3, 4], 0, 0), ("+3$", [3], 3, 0),
    ("3+$", [3], 3, 0), ("3++4$", [3, 4], 7, 0), ("(3+4)$", [3, 4], 7, 0), ("3 +4$", [3, 4], 7, 0),
    ("3+4$+5", [3, 4, 5], 7, 1), ("3+4=7$", [3, 4, 7], 7, 0), ("3+4~$", [3, 4], 7, 0),
    ("-3+10$", [3, 10], 7, 0), ("1234567891+1$", [1], 1, 0),
])
def test_countdown_semantics(text, numbers, goal, want):
    r, _, ref = countdown_case([text], numbers, goal)
    assert float(r[0]) == want == ref[0][0], (text, float(r[0]), ref[0])


def test_countdown_aux_flags():
    r, aux, ref = countdown_case(["3*3$", "3*5$", "3*$", "3*5"], [3, 5], 15)
    np.testing.assert_array_equal(r, [0, 1, 0, 0])
    np.testing.assert_array_equal(aux["format_ok"], [True, True, False, False])
    np.testing.assert_array_equal(aux["numbers_ok"][:2], [False, True])
    assert int(aux["value"][1]) == 15
    assert [x[1] for x in ref] == [True, True, False, False]
    assert [x[2] for x in ref[:2]] == [False, True]


# ------------------------------------------------------------------------------------------------
# Cross-check: JAX reward == host reference on many random / mutated completions
# ------------------------------------------------------------------------------------------------
ALL_IDS = np.arange(TOK.vocab_size)
EXPR_IDS = np.array(TOK.ids_of("0123456789+-*/"))


def mutate(rng, ids, alphabet):
    """One random edit of a token id list (substitute / delete / insert / swap / duplicate)."""
    ids = list(ids)
    kind = rng.integers(5)
    pos = int(rng.integers(max(len(ids), 1)))
    if kind == 0 and ids:
        ids[pos] = int(rng.choice(alphabet))
    elif kind == 1 and ids:
        del ids[pos]
    elif kind == 2:
        ids.insert(pos, int(rng.choice(alphabet)))
    elif kind == 3 and len(ids) > 1:
        pos = min(pos, len(ids) - 2)
        ids[pos], ids[pos + 1] = ids[pos + 1], ids[pos]
    else:
        ids = ids[:pos + 1] + ids[pos:]
    return ids


def random_expression(rng, numbers, max_literal):
    """An expression over a random sub-multiset of numbers, sometimes plus a foreign/reused one."""
    k = int(rng.integers(1, len(numbers) + 1))
    lits = [int(x) for x in rng.choice(numbers, size=k, replace=False)]
    if rng.random() < 0.15:
        lits.append(int(rng.integers(0, max_literal + 1)) if rng.random() < 0.5 else lits[0])
    ops = rng.choice(list("+-*/"), size=len(lits) - 1)
    return str(lits[0]) + "".join(o + str(x) for o, x in zip(ops, lits[1:]))


def build_completions(task, batch, rng, width):
    """~Half near-misses of the solution, plus random expressions / digit strings / token soup."""
    eos = TOK.eos_id
    comps, masks, targets = [], [], batch["target"].copy()
    countdown = task.name == "countdown"
    alphabet = EXPR_IDS if countdown else np.array(TOK.ids_of("0123456789+ "))
    for i in range(len(batch["target"])):
        sol = [int(t) for t in batch["solution"][i, :batch["solution_mask"][i].sum()]]
        body = sol[:-1]
        mode = rng.integers(8)
        if mode == 0:                   # the worked solution
            ids = sol
        elif mode in (1, 2):            # 1-3 edits of the solution text, eos kept
            for _ in range(int(rng.integers(1, 4))):
                body = mutate(rng, body, alphabet if rng.random() < 0.9 else ALL_IDS)
            ids = body + [eos]
        elif mode == 3:                 # solution with its eos dropped / moved / followed by junk
            ids = [body, body + [eos] + list(rng.choice(ALL_IDS, 3)),
                   body[:-1] + [eos] + body[-1:]][rng.integers(3)]
        elif mode == 4 and countdown:   # other expressions; half the time the goal is set to fit
            k = int(batch["target_len"][i])
            text = random_expression(rng, batch["target"][i, 1:1 + k], task.max_number)
            ids = TOK.encode(text, eos=rng.random() < 0.95)
            value = rw.evaluate_countdown(*rw.parse_countdown(text))
            if value is not None and rng.random() < 0.5:
                targets[i, 0] = value
        elif mode == 4:                 # other numbers: random digit strings
            ids = list(rng.choice(EXPR_IDS[:10], int(rng.integers(0, 6)))) + [eos]
        elif mode == 5:                 # soup over the expression alphabet, eos somewhere
            ids = list(rng.choice(alphabet, int(rng.integers(0, width))))
            ids.insert(int(rng.integers(len(ids) + 1)), eos)
        else:                           # soup over the whole vocabulary (pad/bos/unk included)
            ids = list(rng.choice(ALL_IDS, int(rng.integers(0, width + 1))))
        ids = ids[:width]
        comp = np.array(ids + [0] * (width - len(ids)), np.int32)
        mask = (np.arange(width) < len(ids)).astype(np.int32)
        if rng.random() < 0.1:          # a hole in the mask or trailing masked-in padding
            mask[int(rng.integers(width))] = 0 if rng.random() < 0.5 else 1
        comps.append(comp), masks.append(mask)
    return np.stack(comps), np.stack(masks), targets


@pytest.mark.parametrize("config", list(CONFIGS))
def test_jax_reward_matches_host_reference(config):
    task = make_task(config)
    rng = np.random.default_rng(123)
    batch = task.eval_set(640)
    width = task.solution_len + 4
    comp, mask, target = build_completions(task, batch, rng, width)
    fn = registry.get("reward", task.reward_name)
    r, aux = fn(comp, mask, target, batch["target_len"])
    r = np.asarray(r)

    ref, ref_fmt, ref_nums = [], [], []
    for i in range(len(comp)):
        text, terminated = rw.completion_text(comp[i], mask[i])
        example = {"target": target[i], "target_len": batch["target_len"][i]}
        ref.append(task.reference_reward(text, example, terminated))
        if task.name == "countdown":
            k = int(batch["target_len"][i])
            _, fmt, nums = rw.countdown_reference(text, terminated, list(target[i, 1:1 + k]),
                                                  int(target[i, 0]))
        else:
            answer = TOK.decode(target[i, :batch["target_len"][i]])
            (_, fmt), nums = rw.exact_answer_reference(text, terminated, answer), True
        ref_fmt.append(fmt), ref_nums.append(nums)
    ref, ref_fmt = np.array(ref, np.float32), np.array(ref_fmt)
    bad = np.nonzero(r != ref)[0]
    shown = [(task.decode_completion(comp[i], mask[i]), r[i], ref[i]) for i in bad[:5]]
    assert len(bad) == 0, shown
    np.testing.assert_array_equal(np.asarray(aux["format_ok"]), ref_fmt)
    if task.name == "countdown":
        fmt = ref_fmt
        np.testing.assert_array_equal(np.asarray(aux["numbers_ok"])[fmt], np.array(ref_nums)[fmt])
    # The check is only meaningful if both outcomes and both format verdicts occur often.
    assert 60 <= ref.sum() <= len(ref) - 60, ref.sum()
    assert 60 <= ref_fmt.sum() <= len(ref) - 60, ref_fmt.sum()

    # jit gives the same values; vmap over an extra leading axis (two halves) too.
    rj, _ = jax.jit(fn)(comp, mask, target, batch["target_len"])
    np.testing.assert_array_equal(np.asarray(rj), r)
    halves = [x.reshape(2, -1, *x.shape[1:]) for x in (comp, mask, target, batch["target_len"])]
    rv, _ = jax.jit(jax.vmap(fn))(*halves)
    np.testing.assert_array_equal(np.asarray(rv).reshape(-1), r)
    assert not np.any(np.isnan(r))


@pytest.mark.parametrize("config", ["addition", "countdown"])
def test_eval_set_is_fixed_and_held_out(config):
    task = make_task(config)
    e1, e2 = task.eval_set(32), task.eval_set(32)
    train = task.make_batch(0, 0, 32)
    for k in KEYS:
        np.testing.assert_array_equal(e1[k], e2[k])
        assert e1[k].shape == train[k].shape
    assert not np.array_equal(e1["prompt"], train["prompt"])
    assert not np.array_equal(task.eval_set(32, seed=10_001)["prompt"], e1["prompt"])
    with pytest.raises(ValueError, match="10000"):
        task.eval_set(32, seed=9_999)


def test_knob_validation():
    with pytest.raises(ValueError, match="2\\*\\*31"):
        registry.get("task", "countdown")(max_numbers=6, max_number=99)
    with pytest.raises(ValueError, match="digits"):
        registry.get("task", "addition")(min_digits=3, max_digits=2)
    with pytest.raises(ValueError, match="max_target"):
        registry.get("task", "countdown")(max_target=5)
    small = registry.get("task", "countdown")(max_target=40)
    batch = small.make_batch(0, 0, 128)
    assert batch["target"][:, 0].max() <= 40 and small.prompt_len == 1 + 3 * 2 + 2 + 1 + 2 + 1

"""Rubrics (rlpt.envs.rubric) and parsers (rlpt.envs.parsers): weights, named arguments, group
functions, every way a reward function can fail scoring 0, counted, never raised; the judge
rubric (rlpt.envs.judge_rubric)."""
import math
import os
import warnings

import numpy as np
import pytest

from conftest import SHARED_DATA
from rlpt.envs.parsers import ThinkParser, XMLParser, last_assistant_text
from rlpt.envs.rubric import RewardFunc, Rubric
from rlpt.errors import UserError


def rollouts(completions, answers):
    return [{"prompt": [{"role": "user", "content": "q"}], "completion": c, "answer": a,
             "state": {"turn": 1}, "info": {"i": i}} for i, (c, a) in enumerate(zip(completions,
                                                                                   answers))]


def test_weighted_sum_named_arguments_and_metrics():
    seen = []

    def exact(completion, answer):
        return float(completion.strip() == answer)

    def length_penalty(completion):
        return -len(completion) / 10

    def everything(**kw):
        seen.append(sorted(kw))
        return 1

    rub = Rubric([exact, length_penalty, everything], weights=[1.0, 0.5, 2.0])
    r, m = rub.score(rollouts(["4", "5 ", "12"], ["4", "4", "12"]), group_size=1)
    want = np.array([1 - 0.05 + 2, 0 - 0.1 + 2, 1 - 0.1 + 2], np.float32)
    np.testing.assert_allclose(r, want, rtol=1e-6)
    assert m["rubric/exact"] == pytest.approx(2 / 3)
    assert m["rubric/length_penalty"] == pytest.approx(-(1 + 2 + 2) / 30)
    assert m["rubric/exact_errors"] == 0
    assert seen[0] == ["answer", "completion", "info", "prompt", "state"]


def test_group_functions_see_the_group():
    def rank_in_group(completion):
        order = np.argsort(np.argsort([len(c) for c in completion]))
        return [float(o) for o in order]

    rub = Rubric([RewardFunc(rank_in_group, weight=1.0, group=True)])
    r, _ = rub.score(rollouts(["aaa", "a", "aa", "b", "bbbb"] + ["c"], ["x"] * 6), group_size=3)
    np.testing.assert_array_equal(r, [2, 0, 1, 0, 2, 1])
    with pytest.raises(ValueError, match="multiple of the group size"):
        rub.score(rollouts(["a"] * 4, ["x"] * 4), group_size=3)


def test_failures_score_zero_and_are_counted():
    def raises(completion):
        raise KeyError("boom")

    def nan(completion):
        return math.nan

    def text(completion):
        return "1.0"

    def fine(completion):
        return 1.0

    def group_wrong_length(completion):
        return [1.0]

    def group_partly_bad(completion):
        return [1.0, None]

    rub = Rubric([raises, nan, text, fine, RewardFunc(group_wrong_length, group=True),
                  RewardFunc(group_partly_bad, group=True)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r, m = rub.score(rollouts(["a", "b"], ["x", "y"]), group_size=2)
    said = [str(w.message) for w in caught]
    assert len(said) == 5 and "rubric function 'raises' failed (KeyError" in said[0]  # once each
    np.testing.assert_array_equal(r, [2.0, 1.0])   # fine + the good value of the partly bad one
    for name in ("raises", "nan", "text", "group_wrong_length"):
        assert m[f"rubric/{name}_errors"] == 2, name
    assert m["rubric/group_partly_bad_errors"] == 1 and m["rubric/fine_errors"] == 0


def test_bad_rubric_definitions():
    def needs_unknown(completion, reference):
        return 0.0

    with pytest.raises(UserError, match="'reference'.*not rollout fields"):
        Rubric([needs_unknown])
    with pytest.raises(UserError, match="2 functions but 1 weights"):
        Rubric([lambda completion: 0, lambda answer: 0], weights=[1.0])


def test_xml_parser():
    p = XMLParser(("think", "answer"))
    good = "<think>2+2 is 4</think>\n<answer> 4 </answer>"
    assert p.parse(good) == {"think": "2+2 is 4", "answer": "4"}
    assert p.parse_answer([{"role": "assistant", "content": "<answer>1</answer>"},
                           {"role": "user", "content": "again"},
                           {"role": "assistant", "content": good}]) == "4"
    assert p.format_reward(good) == 1.0
    assert p.format_reward("<answer>4</answer><think>x</think>") == 0.5   # out of order
    assert p.format_reward("<think>a</think><think>b</think><answer>4</answer>") == 0.5
    assert p.format_reward("4") == 0.0 and p.parse_answer("4") is None
    assert "<answer>" in p.format_prompt()
    with pytest.raises(ValueError):
        XMLParser(("a b",))


def test_think_parser():
    p = ThinkParser()
    assert p.parse_answer("<think>hmm</think> 42") == "42"
    assert p.parse_answer("42") == "42" and ThinkParser(strict=True).parse_answer("42") is None
    assert p.format_reward("<think>hmm</think> 42") == 1.0
    assert p.format_reward("<think>hmm</think>") == 0.0
    assert p.format_reward("42 <think>hmm</think> 42") == 0.0
    assert last_assistant_text([{"role": "user", "content": "q"}]) == ""


GGUF = os.path.join(SHARED_DATA, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")
def test_judge_rubric_is_the_judges_yes_probability_per_episode():
    """Batched and padded, the judge scores each episode as the unpadded forward of its own
    prompt does (a tiny random judge over SmolLM2's tokenizer and template)."""
    import jax
    from rlpt.envs.environment import Chat
    from rlpt.envs.judge_rubric import DEFAULT_TEMPLATE, judge_reward
    from rlpt.models import forward, get_model_config, init_params
    from rlpt.tokenizers import load_tokenizer
    chat = Chat(load_tokenizer(GGUF))
    cfg = get_model_config("tiny", vocab_size=49152, d_model=32, n_heads=2, n_kv_heads=1,
                           d_ff=64)
    params = jax.tree_util.tree_map(lambda x: 3 * x, init_params(cfg, jax.random.PRNGKey(1)))
    judge = judge_reward(cfg, params, chat, weight=0.5)
    eps = rollouts(["It is 4.", "Five, I think, after a long calculation of many steps."],
                   ["4", "4"])
    r, m = Rubric([judge]).score(eps, group_size=2)
    yes, no = chat.tok.encode("Yes")[0], chat.tok.encode("No")[0]
    for i, ep in enumerate(eps):
        text = DEFAULT_TEMPLATE.format(question="q", response=ep["completion"], answer="4")
        ids = np.array([chat.prompt_ids([{"role": "user", "content": text}])])
        lp = jax.nn.log_softmax(forward(cfg, params, ids)[0, -1])
        want = float(np.exp(lp[yes]) / (np.exp(lp[yes]) + np.exp(lp[no])))
        assert r[i] == pytest.approx(0.5 * want, abs=1e-5)
    assert 0 < m["rubric/judge"] < 1 and m["rubric/judge_errors"] == 0

"""ToolRL, ARTIST, RPT and General-Reasoner rewards: spec sanity values and references."""
import json
import random

import numpy as np
import pytest
from conftest import within

from rlpt.rewards.tool_rewards import (
    artist_format_ok,
    artist_reward,
    general_reasoner_reward,
    match_score,
    parse_tool_calls,
    rpt_prefix_reward,
    rpt_reward,
    toolrl_correctness_score,
    toolrl_format_ok,
    toolrl_ranges,
    toolrl_reward,
)


def call(name, **params):
    return {"name": name, "parameters": params}


def tool_answer(calls, think="t", response=None):
    text = f"<think>{think}</think>\n<tool_call>\n" + "\n".join(json.dumps(c) for c in calls)
    text += "\n</tool_call>"
    return text + (f"\n<response>{response}</response>" if response is not None else "")


# ----------------------------------------------------------------------------- ToolRL


def test_toolrl_spec_sanity():
    s, s_max = toolrl_correctness_score([call("f", a=1, b=2)], [call("f", a=1, c=2)])
    assert s == pytest.approx(2.333333, abs=1e-6) and s_max == 4
    out = toolrl_reward(tool_answer([call("f", a=1, c=2)]), tool_answer([call("f", a=1, b=2)]))
    assert out["correct"] == pytest.approx(0.5)
    assert out["format"] == 1.0 and out["reward"] == pytest.approx(1.5)


def _reference_score(gold, pred):
    """S for call lists with distinct names and no repeated keys: plain set Jaccards."""
    jac = lambda a, b: len(a & b) / len(a | b) if a and b else float(a == b)
    by_name = {p["name"]: p["parameters"] for p in pred}
    s = jac({g["name"] for g in gold}, set(by_name))
    for g in gold:
        if g["name"] in by_name:
            p = by_name[g["name"]]
            s += jac(set(g["parameters"]), set(p))
            s += sum(k in p and p[k] == v for k, v in g["parameters"].items())
    return s, 1 + sum(1 + len(g["parameters"]) for g in gold)


def test_toolrl_score_against_a_set_reference():
    rng = random.Random(0)
    for _ in range(300):
        def calls():
            names = rng.sample("fghij", rng.randint(1, 3))
            return [call(n, **{k: rng.randint(0, 2) for k in rng.sample("abcd", rng.randint(1, 3))})
                    for n in names]
        gold, pred = calls(), calls()
        got, want = toolrl_correctness_score(gold, pred), _reference_score(gold, pred)
        assert got[0] == pytest.approx(want[0]) and got[1] == want[1], (gold, pred)


def test_toolrl_duplicate_calls_use_each_prediction_once():
    gold = [call("f", a=1), call("f", a=2)]
    s, s_max = toolrl_correctness_score(gold, [call("f", a=1)])
    # names: multiset Jaccard 1/2; first gold call matches (1 + 1); the second finds none unused
    assert (s, s_max) == (pytest.approx(2.5), 5)
    assert match_score(["f", "f"], ["f"]) == 0.5 and match_score([], ["f"]) == 0.0


def test_toolrl_correctness_cases():
    gold = tool_answer([call("f", a=1), call("g", b="x")])
    assert toolrl_reward(gold, gold)["correct"] == 3.0
    swapped = tool_answer([call("g", b="x"), call("f", a=1)])
    # order differs: not an exact match, yet every component scores in full
    assert toolrl_reward(swapped, gold)["correct"] == pytest.approx(3.0)
    assert toolrl_reward("<think>t</think>\n<tool_call>\nf(a=1)\n</tool_call>", gold)[
        "correct"] == -3.0
    assert toolrl_reward("<think>t</think>", gold)["correct"] == -3.0
    no_call = "<think>t</think>\n<response>hi</response>"
    assert toolrl_reward(tool_answer([call("f", a=1)]), no_call)["correct"] == 0.0
    assert parse_tool_calls("no block") is None
    with pytest.raises(ValueError, match="parameters"):
        parse_tool_calls('<tool_call>\n{"name": "f"}\n</tool_call>')


def test_toolrl_format():
    gold_tool = tool_answer([call("f", a=1)])
    gold_both = tool_answer([call("f", a=1)], response="done")
    gold_resp = "<think>t</think>\n<response>r</response>"
    assert toolrl_format_ok(tool_answer([call("g")]), gold_tool)
    assert toolrl_format_ok(tool_answer([call("g")]) + "\n", gold_tool)
    assert not toolrl_format_ok(tool_answer([call("g")], response="x"), gold_tool)
    assert toolrl_format_ok(tool_answer([call("g")], response="x"), gold_both)
    assert toolrl_format_ok("<think>a</think>\n<response>b</response>", gold_resp)
    assert not toolrl_format_ok("<think>a</think><response>b</response>", gold_resp)  # no \n
    assert not toolrl_format_ok("<think>a<think>b</think>\n<response>c</response>", gold_resp)
    assert not toolrl_format_ok("x<think>a</think>\n<response>b</response>", gold_resp)
    assert toolrl_format_ok("<think>only</think>", "<think>g</think>")


def test_toolrl_dynamic_ranges_against_interpolation():
    assert toolrl_ranges(None) == {"format": (0.0, 1.0), "correct": (-3.0, 3.0)}
    for step in [0, 1, 30, 74, 75, 76, 100, 149, 150, 151, 400]:
        r = toolrl_ranges(step)
        assert r["format"][1] == pytest.approx(np.interp(step, [0, 150], [2, 1]))
        assert r["format"][0] == pytest.approx(np.interp(step, [0, 75], [-2, -1]))
        assert r["correct"][1] == pytest.approx(np.interp(step, [0, 150], [2, 3]))
        assert r["correct"][0] == pytest.approx(np.interp(step, [0, 150], [-2, -3]))
    gold = tool_answer([call("f", a=1, b=2)])
    early = toolrl_reward(tool_answer([call("f", a=1, c=2)]), gold, step=0)
    assert early["format"] == 2.0 and early["correct"] == pytest.approx(4 * (7 / 3) / 4 - 2)
    assert toolrl_reward("junk", gold, step=0)["reward"] == -4.0


# ----------------------------------------------------------------------------- ARTIST


GOOD_ARTIST = ("<think>plan</think>\n<python>print(6*7)</python>\n<output>42</output>\n"
               "<python>1/0</python><output>Traceback: ZeroDivisionError</output>\n"
               "<answer>The result is \\boxed{42}</answer>")


def test_artist_reward_components():
    out = artist_reward(GOOD_ARTIST, "42")
    assert out == {"answer": 2.0, "format": 1.0, "tool": 0.5, "reward": 3.5}
    assert artist_reward(GOOD_ARTIST, "41")["reward"] == 1.5
    assert artist_reward(GOOD_ARTIST, "42", tool_success=[True, True, True])["tool"] == 1.0
    plain = "<think>easy</think><answer>42</answer>"
    assert artist_reward(plain, "42") == {"answer": 2.0, "format": 1.0, "tool": 0.0,
                                          "reward": 3.0}
    assert artist_reward("42", "42") == {"answer": 0.0, "format": 0.0, "tool": 0.0,
                                         "reward": 0.0}


@pytest.mark.parametrize("response", [
    "<think>a</think><answer>1</answer><think>b</think>",          # answer not last
    "<answer>1</answer><answer>2</answer>",                         # two answers
    "<python>x</python><answer>1</answer>",                         # tool without output
    "<output>x</output><answer>1</answer>",                         # output without tool
    "text <think>a</think><answer>1</answer>",                      # text outside blocks
    "<think>a <python>x</python></think><answer>1</answer>",        # nested
    "<think>a</think>",                                             # no answer
])
def test_artist_format_rejects(response):
    assert not artist_format_ok(response)


# ----------------------------------------------------------------------------- RPT


def test_rpt_spec_sanity():
    gold = ["The", " cat"]
    assert rpt_prefix_reward("The", gold) == 1.0
    assert rpt_prefix_reward("The cat", gold) == 1.0
    assert rpt_prefix_reward("The c", gold) == 0.0


def test_rpt_bytes_and_boxed():
    gold = ["caf", "é", " au"]               # "é" is two utf-8 bytes
    assert rpt_prefix_reward("café", gold) == 1.0
    assert rpt_prefix_reward("café".encode()[:4], gold) == 0.0     # half a character
    assert rpt_prefix_reward(b"caf", [b"caf", b"\xc3\xa9"]) == 1.0
    assert rpt_prefix_reward("", gold) == 0.0 and rpt_prefix_reward("cafe", gold) == 0.0
    assert rpt_prefix_reward("café au lait", gold) == 0.0          # longer than the gold
    assert rpt_reward("thinking... \\boxed{ cat}", [" cat", " sat"]) == 1.0
    assert rpt_reward("thinking... \\boxed{cat}", [" cat", " sat"]) == 0.0
    assert rpt_reward("no box", [" cat"]) == 0.0


# ----------------------------------------------------------------------------- General-Reasoner


def test_general_reasoner_reward():
    assert general_reasoner_reward("no boxed answer", "42") == -0.5
    assert general_reasoner_reward("\\boxed{41}", "42") == 0.0
    assert general_reasoner_reward("\\boxed{42}", "42") == 1.0
    assert general_reasoner_reward("\\boxed{42 dollars}", "42") == pytest.approx(0.95)
    long_answer = "\\boxed{42" + " really" * 30 + "}"
    assert general_reasoner_reward(long_answer, "42") == pytest.approx(0.5)   # capped at 10
    same = lambda pred, gold: pred.lower() == gold.lower()
    assert general_reasoner_reward("\\boxed{Paris}", "paris", verifier=same) == 1.0
    chars = general_reasoner_reward("\\boxed{Paris}", "paris", verifier=same,
                                    count_tokens=lambda s: len(s) + 3)
    assert chars == 1.0
    assert general_reasoner_reward("\\boxed{abc}", "a", verifier=lambda p, g: True,
                                   count_tokens=len) == pytest.approx(0.9)


# ----------------------------------------------------------------------------- hostile model text


N = 100_000
GOLD_CALL = tool_answer([call("a", x=1)])
TOOLRL_MIN_CORRECT = -3.0
HOSTILE = {
    "deep json arrays": "<tool_call>\n" + "[" * N + "\n</tool_call>",
    "deep json objects": "<tool_call>\n" + '{"a":' * (N // 5) + "\n</tool_call>",
    "open braces": "<tool_call>\n" + "{" * N + "\n</tool_call>",
    "json int past the limit": ('<tool_call>\n{"name": "a", "parameters": {"x": '
                                + "1" * 5000 + "}}\n</tool_call>"),
    "unclosed outputs": "<python>1</python>" + "<output>" * (N // 8),
    "unclosed answers": "<answer>" * (N // 8),
    "unclosed thinks": "<think>" * (N // 7),
    "unclosed boxes": "\\boxed{" * (N // 7),
    "repeated layout": ("<think>a</think>\n<tool_call>\n" * (N // 30)
                        + "<response>" * (N // 20)),
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_never_raises_and_is_linear(text):
    """Unparsable model text gets the no-answer / unparsable score in bounded time."""
    r = within(2.0, toolrl_reward, text, GOLD_CALL)
    assert r["correct"] == TOOLRL_MIN_CORRECT and r["format"] == 0.0
    assert within(2.0, toolrl_reward, text, "<think>x</think>\n<response>y</response>")["format"] == 0
    assert within(2.0, artist_reward, text, "5")["answer"] == 0.0
    assert not within(2.0, artist_format_ok, text)
    assert within(2.0, rpt_reward, text, [" cat"]) == 0.0
    assert within(2.0, general_reasoner_reward, text, "5") in (-0.5, 0.0)


def test_unparsable_json_is_a_value_error():
    for text in (HOSTILE["deep json arrays"], HOSTILE["json int past the limit"]):
        with pytest.raises(ValueError, match="not JSON"):
            parse_tool_calls(text)


def test_unclosed_blocks_do_not_hide_closed_ones():
    from rlpt.rewards.tool_rewards import tag_blocks, tool_success_from_outputs
    text = "<output>ok</output><output>Error</output>" + "<output>" * 1000
    assert tag_blocks(text, "output") == ["ok", "Error"]
    assert tool_success_from_outputs(text) == [True, False]
    assert artist_reward("<answer>\\boxed{5}</answer><answer>", "5")["answer"] == 2.0

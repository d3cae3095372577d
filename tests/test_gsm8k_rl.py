"""GSM8K through the RL step: the task contract on real rows (TFDS data source, prompt
template, bucket), a byte-level BPE tokenizer trained here on GSM8K text, the host verifier on
decoded strings, and 2 fused GRPO steps of a random tiny model (rewards ~0)."""
import json
import os

import jax
import numpy as np
import pytest

from configs import grpo_gsm8k
from conftest import SHARED_DATA
from rlpt.config import validate
from rlpt.rewards import math_answer
from rlpt.step import make_fused_step
from rlpt.tasks.prompts import format_prompt
from rlpt.tokenizers import train_bpe_tokenizer
from rlpt.build import build_model, build_rl, build_task

GSM8K = os.path.join(SHARED_DATA, "gsm8k")
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(GSM8K, "train.jsonl")),
                                reason="GSM8K files not found")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gsm8k_rl")
    with open(os.path.join(GSM8K, "train.jsonl")) as f:
        rows = [json.loads(line) for _, line in zip(range(1000), f)]
    train_bpe_tokenizer((r["question"] + "\n" + r["answer"] for r in rows), 512,
                        str(tmp / "tokenizer.json"))
    cfg = grpo_gsm8k.get_config(
        f"tokenizer={tmp / 'tokenizer.json'},eos=[EOS],pad=[PAD],template=plain,quick=1,"
        f"max_rows=64,data_dir={tmp / 'tfds'}")
    cfg.task.kwargs.source_dir = GSM8K
    cfg = validate(cfg)
    return cfg, build_task(cfg), rows


def test_config_and_task_contract(setup):
    cfg, task, rows = setup
    tok = task.tokenizer
    assert cfg.model.vocab_size == tok.vocab_size == 512 and cfg.reward.kind == "host"
    assert tuple(cfg.sampling.stop_tokens) == (tok.eos_id,) and cfg.sampling.pad_id == tok.pad_id
    b = task.make_batch(1, 0, 3)
    shapes = {k: v.shape for k, v in b.items()}
    assert shapes == {"prompt": (3, 256), "prompt_mask": (3, 256), "target": (3, 16),
                      "target_len": (3,), "solution": (3, 320), "solution_mask": (3, 320)}
    assert all(v.dtype == np.int32 for v in b.values())
    for k, v in task.make_batch(1, 0, 3).items():  # deterministic in (seed, step)
        np.testing.assert_array_equal(v, b[k])
    by_question = {r["question"]: r for r in rows}
    for i in range(3):
        m = b["prompt_mask"][i].astype(bool)
        assert m[-1] and not m[0] and np.all(np.diff(m.astype(int)) >= 0)  # left-padded
        text = tok.decode(b["prompt"][i][m], stop_at_eos=False)
        q = text[len("Question: "):-len("\nAnswer:")]
        assert text == format_prompt(q, "plain") and q in by_question
        gold = by_question[q]["answer"].split("####")[-1].strip()
        assert tok.decode(b["target"][i][: b["target_len"][i]], stop_at_eos=False) == gold
        sol = b["solution"][i][b["solution_mask"][i] > 0]
        assert sol[-1] == tok.eos_id or len(sol) == 320
    ev = task.eval_set(4)
    assert ev["prompt"].shape == (4, 256) and ev["target"].shape == (4, 16)


def test_host_verifier_scores_decoded_strings(setup):
    _, task, _ = setup
    tok = task.tokenizer
    b = task.make_batch(1, 0, 2)
    gold = tok.decode(b["target"][0][: b["target_len"][0]])
    comps = [f" so the answer is {gold}.", " I do not know", f" #### {gold}"]
    T = 24
    tokens = np.full((3, T), tok.pad_id, np.int32)
    mask = np.zeros((3, T), np.int32)
    for i, c in enumerate(comps):
        ids = tok.encode(c, eos=True) + tok.encode(" 999")  # text after the eos is ignored
        tokens[i, :len(ids)], mask[i, :len(ids)] = ids, 1
    target = np.repeat(b["target"][:1], 3, 0)
    target_len = np.repeat(b["target_len"][:1], 3, 0)
    np.testing.assert_array_equal(task.host_reward(tokens, mask, target, target_len), [1, 0, 1])
    r, _ = jax.jit(task.reward)(tokens, mask, target, target_len)  # the in-step callback
    np.testing.assert_array_equal(np.asarray(r), [1, 0, 1])


def test_two_rl_steps_call_the_verifier_on_decoded_strings(setup, monkeypatch):
    cfg, task, _ = setup
    tok = task.tokenizer
    calls = []
    real = math_answer.gsm8k_reward

    def spy(response, gold, **kw):
        calls.append((response, gold))
        return real(response, gold, **kw)
    monkeypatch.setattr(math_answer, "gsm8k_reward", spy)
    model_cfg, params = build_model(cfg)
    assert model_cfg.vocab_size == 512 and model_cfg.d_model == 128  # the tiny preset
    # as the trainer: reward.kind="host" puts task.host_reward behind host_reward_callback
    spec, state, hp, _ = build_rl(cfg, model_cfg, params, task)
    step = make_fused_step(spec, donate=False)
    B, G = cfg.rl.batch_size, cfg.sampling.num_samples
    for s in range(2):
        batch = task.make_batch(cfg.seed + 1, s, B)
        n0 = len(calls)
        state, m = step(state, batch, hp)
        m = jax.device_get(m)
        assert len(calls) - n0 == B * G
        golds = [tok.decode(batch["target"][i][: batch["target_len"][i]]) for i in range(B)]
        assert [g for _, g in calls[n0:]] == [g for g in golds for _ in range(G)]
        assert all(isinstance(r, str) for r, _ in calls[n0:])
        for k in ("loss", "reward_mean", "grad_norm", "response_len", "entropy_sampled"):
            assert np.isfinite(m[k]), k
        assert 0.0 <= m["reward_mean"] <= 1.0
    assert int(state.step) == 2
    assert any(len(r) > 0 for r, _ in calls)  # a random model still emits text

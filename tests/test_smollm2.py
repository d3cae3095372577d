"""SmolLM2-135M-Instruct from its GGUF file (../shared/data/smollm2): rlpt's loader, tokenizer and
chat template against HF transformers reading the same file (transformers de-quantises it to
float32 with the `gguf` package; an independent implementation of the mapping, the rotary
un-permutation, the byte-level BPE and the Jinja rendering)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_DATA
from rlpt.models import forward, load_checkpoint
from rlpt.sampling import SamplingConfig, sample
from rlpt.tokenizers import load_tokenizer

DIR = os.path.join(SHARED_DATA, "smollm2")
NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF = os.path.join(DIR, NAME)
pytestmark = pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")

TEXTS = ["Hello world", "  leading spaces, trailing  ", "12345 + 678 = 7023, 3.14159",
         "ünïcödé café naïve 你好世界 🚀🎉 Привет",
         "<|im_start|>user\nHi<|im_end|>\n",
         "tabs\tand\nnewlines\r\n\n\n", "x² + y³ = z¹⁰", "don't I'll we've THEY'RE",
         "<repo_name>a<file_sep>b<|endoftext|>", "", "a" * 40,
         "def f(x):\n    return x  # code\n"]
CONVERSATIONS = [
    [{"role": "user", "content": "What is 12 + 7?"}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another one, please."}],
]


@pytest.fixture(scope="module")
def rlpt_model():
    return load_checkpoint(GGUF)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(GGUF)


@pytest.fixture(scope="module")
def hf_tok():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    return transformers.AutoTokenizer.from_pretrained(DIR, gguf_file=NAME)


@pytest.fixture(scope="module")
def hf_model():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers needs it to read GGUF files
    model = transformers.AutoModelForCausalLM.from_pretrained(DIR, gguf_file=NAME,
                                                              dtype=torch.float32)
    return torch, model.eval()


def test_config_from_metadata(rlpt_model):
    cfg, params = rlpt_model
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (30, 576, 9, 3,
                                                                                  1536)
    assert (cfg.vocab_size, cfg.rope_theta, cfg.rms_eps, cfg.hd) == (49152, 1e5, 1e-5, 64)
    assert cfg.tied_embeddings and not cfg.qkv_bias and "lm_head" not in params
    assert params["layer_0"]["attn"]["k"]["kernel"].shape == (576, 192)


def test_token_ids_and_decoding_match_hf(tok, hf_tok):
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == (1, 2, 2, 0)
    assert tok.vocab_size == hf_tok.vocab_size == 49152
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == hf_tok(text, add_special_tokens=False).input_ids, text
        assert tok.decode(ids, stop_at_eos=False) == hf_tok.decode(ids, skip_special_tokens=True)
    assert tok.encode("<|im_start|><|im_end|>") == [1, 2]  # specials match whole


def test_numerals_are_isolated_as_the_file_says(tok):
    """tokenizer.ggml.pre = "smollm": llama.cpp isolates every numeric character before GPT-2's
    regex (as SmolLM2's own tokenizer.json does). transformers' GGUF reader ignores that field,
    which differs only where a space precedes a non-ASCII numeral: " ٤" is "Ġ" + "٤" here."""
    space, four = tok.encode(" "), tok.encode("٤")
    assert tok.encode("١ ٤") == tok.encode("١") + space + four


def test_chat_template_renders_like_hf(tok, hf_tok):
    for messages in CONVERSATIONS:
        for gen in (True, False):
            ours = tok.apply_chat_template(messages, add_generation_prompt=gen)
            assert ours == hf_tok.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=gen)
    text = tok.apply_chat_template(CONVERSATIONS[0])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text.endswith("<|im_start|>assistant\n")
    assert tok.apply_chat_template(CONVERSATIONS[0], tokenize=True) == tok.encode(text)


def _left_pad(rows, pad_id):
    width = max(map(len, rows))
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r):], mask[i, width - len(r):] = r, True
    return jnp.asarray(ids), jnp.asarray(mask)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_logits_of_chat_prompts_match_hf(rlpt_model, tok, hf_model):
    """float32 logits of chat-formatted prompts, one left-padded batch, agree to 1e-3."""
    torch, model = hf_model
    cfg, params = rlpt_model
    rows = [tok.apply_chat_template(m, tokenize=True) for m in CONVERSATIONS]
    ids, mask = _left_pad(rows, tok.pad_id)
    got = np.asarray(jax.jit(lambda p, x, m: forward(cfg, p, x, m))(params, ids, mask))
    worst = 0.0
    for i, r in enumerate(rows):
        with torch.no_grad():
            ref = model(torch.tensor([r])).logits[0].numpy()
        worst = max(worst, float(np.abs(got[i, ids.shape[1] - len(r):] - ref).max()))
    print(f"SmolLM2 chat prompts: max |logit difference| vs transformers {worst:.2e}")
    assert worst < 1e-3


@pytest.mark.slow
def test_greedy_continuations_match_hf(rlpt_model, tok, hf_model):
    """32 greedy tokens after each chat prompt, rlpt's sampler (one left-padded batch) against
    transformers' generate, identical."""
    torch, model = hf_model
    cfg, params = rlpt_model
    prompts = [[{"role": "user", "content": "Write a short story about a cat who learns to fly."}],
               [{"role": "user", "content": "Explain photosynthesis to a child."}]]
    rows = [tok.apply_chat_template(m, tokenize=True) for m in prompts]
    ids, mask = _left_pad(rows, tok.pad_id)
    scfg = SamplingConfig(max_new_tokens=32, greedy=True, stop_tokens=(tok.eos_id,),
                          pad_id=tok.pad_id)
    out = jax.jit(lambda p, x, m: sample(cfg, p, x, m, jax.random.PRNGKey(0), scfg))(
        params, ids, mask)
    for i, r in enumerate(rows):
        with torch.no_grad():
            ref = model.generate(torch.tensor([r]), max_new_tokens=32, do_sample=False,
                                 eos_token_id=tok.eos_id, pad_token_id=tok.pad_id)[0, len(r):]
        got = np.asarray(out.tokens[i, : int(out.lengths[i])])
        assert got.tolist() == ref.tolist(), (tok.decode(got), tok.decode(ref.tolist()))
        assert len(got) == 32


def test_exported_tokenizer_reads_back_in_transformers(tok, tmp_path):
    """The GGUF tokenizer saved as tokenizer.json + tokenizer_config.json: transformers'
    AutoTokenizer and rlpt's load_tokenizer read back the same ids and chat template."""
    transformers = pytest.importorskip("transformers")
    out = str(tmp_path / "tok")
    tok.save_pretrained(out)
    hf_tok, back = transformers.AutoTokenizer.from_pretrained(out), load_tokenizer(out)
    assert (hf_tok.eos_token_id, hf_tok.pad_token_id, back.eos_id, back.bos_id) == (2, 2, 2, 1)
    for text in TEXTS:
        assert hf_tok(text, add_special_tokens=False).input_ids == tok.encode(text), text
        assert back.encode(text) == tok.encode(text)
    for messages in CONVERSATIONS:
        assert hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) \
            == tok.apply_chat_template(messages) == back.apply_chat_template(messages)


@pytest.mark.slow
def test_export_round_trips_through_transformers(rlpt_model, tok, tmp_path):
    """rlpt.export.export_hf of the loaded model and tokenizer (a 540 MB float32 safetensors
    file): transformers runs it to rlpt's logits (2e-5 of the largest); rlpt reads it back exactly."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from rlpt.export import export_hf
    cfg, params = rlpt_model
    out = str(tmp_path / "smollm2_hf")
    export_hf(out, cfg, params, tok, stop_tokens=(tok.eos_id,))
    ids = tok.apply_chat_template(CONVERSATIONS[1], tokenize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    got = np.asarray(jax.jit(lambda p, x: forward(cfg, p, x))(params, jnp.asarray([ids])))[0]
    err, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    print(f"SmolLM2 exported: max |logit difference| vs transformers {err:.2e} (logits up to "
          f"{scale:.1f})")
    assert err < 2e-5 * max(1.0, scale)  # float32 summation order, in proportion to the scale
    back_cfg, back = load_checkpoint(out)
    assert back_cfg.num_params() == cfg.num_params() and back_cfg.tied_embeddings
    np.testing.assert_array_equal(back["layer_7"]["attn"]["q"]["kernel"],
                                  params["layer_7"]["attn"]["q"]["kernel"])
    assert load_tokenizer(out).apply_chat_template(CONVERSATIONS[0]) == \
        tok.apply_chat_template(CONVERSATIONS[0])


# -- the word_arith task and configs/smollm2_rlvr.py (the README's "SmolLM2 in and out") ------

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "smollm2_rlvr.py")


@pytest.fixture(scope="module")
def quick_cfg():
    from rlpt.config import load_config, validate
    return validate(load_config(f"{CONFIG}:quick=1,checkpoint={GGUF}"))


@pytest.fixture(scope="module")
def word_task(quick_cfg):
    from rlpt.build import build_task
    return build_task(quick_cfg)


def test_word_arith_prompts_are_chat_template_renderings(word_task, tok):
    """The task's tokenizer is the GGUF's; each prompt is the question as one user message in
    the chat template (left-padded with pad); held-out questions are not trained on."""
    assert word_task.tokenizer.eos_id == tok.eos_id == 2
    head = tok.encode("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    tail = tok.encode("<|im_end|>\n<|im_start|>assistant\n")
    train = {q for q, _ in word_task.rows}
    for batch, must_be_train in ((word_task.make_batch(1, 0, 3), True),
                                 (word_task.eval_set(4), False)):
        for x, m in zip(batch["prompt"], batch["prompt_mask"]):
            ids = x[m > 0].tolist()
            assert m[-1] and np.all(x[m == 0] == tok.pad_id)
            assert ids[:len(head)] == head and ids[-len(tail):] == tail
            text = tok.decode(ids, stop_at_eos=False)
            q = text.split("user\n")[1].split("\nassistant")[0]  # special tokens are skipped
            assert ids == tok.apply_chat_template([{"role": "user", "content": q}],
                                                  tokenize=True)
            assert (q in train) == must_be_train, q


def test_word_arith_reward_reads_the_decoded_completion(word_task, tok):
    """1 when gsm8k_reward finds the gold number in the completion up to the eos, else 0."""
    gold = tok.encode("15")
    texts = ["Leo has 9 + 6 = 15 shells.", "Leo has 9 + 6 = 14 shells.", "#### 15"]
    rows = [tok.encode(t, eos=True) + tok.encode(" 99") for t in texts]  # after eos: ignored
    width = max(map(len, rows))
    tokens = np.array([r + [tok.pad_id] * (width - len(r)) for r in rows], np.int32)
    mask = np.array([[1] * len(r) + [0] * (width - len(r)) for r in rows], np.int32)
    target = np.full((3, word_task.target_width), tok.pad_id, np.int32)
    target[:, :len(gold)] = gold
    target_len = np.full((3,), len(gold), np.int32)
    np.testing.assert_array_equal(word_task.host_reward(tokens, mask, target, target_len),
                                  [1, 0, 1])
    r, aux = word_task.reward(tokens, mask, target, target_len)  # the evaluation's callback
    np.testing.assert_array_equal(np.asarray(r), [1, 0, 1])


def test_two_word_arith_kinds_compose_as_a_transfer_task(tok):
    """rlpt.tasks.transfer over word problems (trained) and plain sums (evaluated too): RL's
    batches are the word problems', the held-out set labels each kind, one host verifier scores
    both kinds' gold answers, and a validation split (another seed) is refused."""
    from rlpt import registry
    word = dict(name="word_arith", kwargs=dict(tokenizer_path=GGUF, kind="add"))
    plain = dict(name="word_arith", kwargs=dict(tokenizer_path=GGUF, kind="plain_add"))
    t = registry.get("task", "transfer")(components=[word, plain], train=0)
    text = lambda b: [tok.decode(row[m > 0], stop_at_eos=False)
                      for row, m in zip(b["prompt"], b["prompt_mask"])]
    assert all("How many" in q for q in text(t.make_batch(0, 0, 4)))
    ev = t.eval_set(6)
    assert ev["difficulty"].tolist() == [0, 0, 0, 1, 1, 1]
    prompts = text(ev)
    assert ["What is" in q for q in prompts] == [False] * 3 + [True] * 3
    r = t.host_reward(ev["solution"], ev["solution_mask"], ev["target"], ev["target_len"])
    np.testing.assert_array_equal(r, np.ones(6))
    r = t.host_reward(ev["solution"][::-1], ev["solution_mask"][::-1], ev["target"],
                      ev["target_len"])
    assert r.sum() < 6   # another row's answer is not this row's
    with pytest.raises(ValueError, match="no validation split"):
        t.eval_set(6, seed=7)


def test_smollm2_rlvr_quick_config_builds(quick_cfg, word_task, rlpt_model, tok):
    """configs/smollm2_rlvr.py:quick=1 validates and builds through rlpt.build (nothing is
    compiled): the checkpoint's eos ends completions, the task reads the checkpoint's tokenizer
    (rlpt.export writes it), checkpoints are saved."""
    from rlpt.build import build_rl
    from rlpt.config import validate_vocab
    from rlpt.export import run_tokenizer
    c = quick_cfg
    assert (c.task.name, c.reward.kind, c.model.checkpoint) == ("word_arith", "split", GGUF)
    assert tuple(c.sampling.stop_tokens) == (tok.eos_id,) and c.sampling.pad_id == tok.pad_id
    assert c.ckpt_every >= 1 and c.rl.steps == 2
    assert run_tokenizer(c.to_dict()).source == GGUF
    model_cfg, params = rlpt_model
    validate_vocab(c, model_cfg.vocab_size, word_task.tokenizer.vocab_size)
    spec, state, hp, make_batch = build_rl(c, model_cfg, params, word_task)
    b = make_batch(0)
    assert b["prompt"].shape == (c.rl.batch_size, word_task.prompt_len)
    assert spec.scfg.stop_tokens == (tok.eos_id,) and spec.batch_size == c.rl.batch_size
    assert word_task.eval_set(c.eval.n_prompts)["prompt"].shape[0] == c.eval.n_prompts


@pytest.mark.slow
def test_quick_run_exports_to_transformers(quick_cfg, rlpt_model, tok, tmp_path, capsys):
    """The README's "SmolLM2 in and out": rlpt.train of configs/smollm2_rlvr.py:quick=1 (here 1
    RL step, 2 held-out questions), rlpt.export of the run, then transformers'
    AutoModelForCausalLM and AutoTokenizer read the export: same chat-prompt ids, logits of the
    trained parameters within 2e-5 of the largest (tests/test_export.py)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from rlpt.export import main as export_main, restore_params
    from rlpt.train import run
    cfg = quick_cfg.copy_and_resolve_references()
    cfg.rl.steps, cfg.eval.n_prompts, cfg.sampling.max_new_tokens = 1, 2, 8
    workdir, out = str(tmp_path / "run"), str(tmp_path / "hf")
    run(cfg, workdir)
    export_main([f"--workdir={workdir}", f"--out={out}"])
    assert "ckpt/rl/1" in capsys.readouterr().out
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = tok.apply_chat_template(CONVERSATIONS[0], tokenize=True)
    assert hf_tok.apply_chat_template(CONVERSATIONS[0], tokenize=True, return_dict=True,
                                      add_generation_prompt=True)["input_ids"] == ids
    model_cfg = rlpt_model[0]
    _, step, params = restore_params(workdir, model_cfg)
    assert step == 1
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    got = np.asarray(jax.jit(lambda p, x: forward(model_cfg, p, x))(params, jnp.asarray([ids])))[0]
    err, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    print(f"SmolLM2 quick run exported: max |logit difference| vs transformers {err:.2e}")
    assert err < 2e-5 * max(1.0, scale)

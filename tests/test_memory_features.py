"""The memory options of the model forward (ModelConfig.remat / attention / logits_chunk /
vocab_chunk) compute what the plain path computes, values and gradients, and each lowers the
compiled program's temporary memory (`memory_analysis().temp_size_in_bytes`); bad values are
refused naming their config key."""
import dataclasses
import functools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from conftest import REPO_ROOT
from rlpt.build import build_model
from rlpt.config import validate
from rlpt.errors import UserError
from rlpt.logprobs import completion_logprobs, rows_logprobs, sequence_outputs
from rlpt.models import ModelConfig, forward, get_model_config, init_params, token_logprobs
from rlpt.sampling import SamplingConfig, sample

CFG = get_model_config("tiny", vocab_size=96)   # GQA: 4 query heads on 2 KV heads
N, P, T, G = 8, 6, 8, 4
TEMPERATURE = 0.7


@functools.lru_cache(maxsize=None)
def params():
    p = init_params(CFG, jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda x: x * 2.0 if x.ndim == 2 else x, p)  # sharper


@functools.lru_cache(maxsize=None)
def rows():
    """N rows `[prompt (P, left-padded) | completion (T)]` in groups of G sharing a prompt
    (lengths 6 and 1: five pad queries, fully masked), completions ending early."""
    rng = np.random.default_rng(0)
    prompt_len = np.repeat([6, 1], G)
    done_at = np.array([8, 5, 8, 1, 3, 8, 6, 8])
    tokens = rng.integers(3, CFG.vocab_size, (N, P + T)).astype(np.int32)
    tokens[:, :P] = np.repeat(tokens[::G, :P], G, axis=0)
    valid = np.concatenate([np.arange(P)[None] >= P - prompt_len[:, None],
                            np.arange(T)[None] < done_at[:, None]], axis=1)
    return jnp.asarray(np.where(valid, tokens, 0)), jnp.asarray(valid)


def weights():
    return jnp.asarray(np.random.default_rng(1).normal(size=(N, T)), jnp.float32)


def assert_close(got, want, tol=1e-5):
    """Every leaf equal to `tol`, relative to that leaf's largest magnitude when above 1."""
    for path, w in jax.tree_util.tree_leaves_with_path(want):
        g = functools.reduce(lambda t, k: t[getattr(k, "key", getattr(k, "idx", None))],
                             path, got)
        scale = max(1.0, float(np.max(np.abs(w))))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=tol * scale,
                                   err_msg=jax.tree_util.keystr(path))


def with_(**fields) -> ModelConfig:
    return dataclasses.replace(CFG, **fields)


def temp_bytes(fn, *args) -> int:
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def logprob_loss(cfg, group_size):
    """(loss, (logp, entropy)) and its gradient: a policy-gradient-like weighted mean of the
    completion log-probs plus an entropy bonus, at a temperature != 1."""
    tokens, valid = rows()
    w = weights()

    def loss(p):
        logp, ent = completion_logprobs(cfg, p, tokens, valid, P, TEMPERATURE, True, group_size)
        return jnp.mean(logp * w) + 0.1 * jnp.mean(ent), (logp, ent)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params())


@functools.lru_cache(maxsize=None)
def plain_logprob_loss(group_size):
    return logprob_loss(CFG, group_size)


@functools.lru_cache(maxsize=None)
def plain_forward():
    tokens, valid = rows()

    def f(p):
        logits = forward(CFG, p, tokens, valid)
        return jnp.mean(token_logprobs(logits[:, :-1], tokens[:, 1:]) * valid[:, 1:]), logits
    return jax.jit(jax.value_and_grad(f, has_aux=True))(params())


# ----------------------------------------------------------------------------- remat

@pytest.mark.parametrize("remat", ["block", pytest.param("dots_saveable", marks=pytest.mark.slow)])
def test_remat_equals_the_plain_path(remat):
    """Loss, log-probs, entropies and gradients, through the full forward (group 1) and the
    shared-prompt prefill + cached pass (group 4)."""
    for group_size in (1, G):
        assert_close(logprob_loss(with_(remat=remat), group_size), plain_logprob_loss(group_size))


_REMAT_MEMORY = """
import dataclasses, jax, jax.numpy as jnp
from rlpt.models import forward, get_model_config, init_params, token_logprobs
cfg = get_model_config("tiny", n_layers=4)
p = init_params(cfg, jax.random.PRNGKey(0))
tokens, valid = jnp.ones((2, 256), jnp.int32), jnp.ones((2, 256), bool)
def temp(remat):
    c = dataclasses.replace(cfg, remat=remat)
    loss = lambda p: -jnp.mean(token_logprobs(forward(c, p, tokens, valid)[:, :-1], tokens[:, 1:]))
    return jax.jit(jax.grad(loss)).lower(p).compile().memory_analysis().temp_size_in_bytes
print(temp("none"), temp("block"))
"""


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_remat_block_cuts_the_compiled_temp_memory():
    """4 layers, 2 x 256 tokens: the backward pass of `remat="block"` keeps each block's input
    instead of its activations. XLA:CPU removes the optimization barriers that keep the
    recomputation apart (its `cse_barrier_expander` pass) and CSE then merges the recomputation
    into the forward: on CPU the remat would be undone (40.9 MB both ways). So the program is
    compiled, on CPU, in a process with that pass disabled; elsewhere as it is."""
    env = dict(os.environ)
    if jax.default_backend() == "cpu":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "")
                            + " --xla_disable_hlo_passes=cse_barrier_expander").strip()
    proc = subprocess.run([sys.executable, "-c", _REMAT_MEMORY], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    none, block = map(int, proc.stdout.split())
    print(f"remat temp memory, 4 layers x 2 x 256 tokens: none {none / 2**20:.1f} MiB, "
          f"block {block / 2**20:.1f} MiB")
    assert block < 0.5 * none


# ------------------------------------------------------------------------- attention

ATTENTION_CASES = [("blockwise", 7), ("blockwise", 4), ("blockwise", 5), ("dot_product", 512)]


@pytest.mark.parametrize("attention,block", ATTENTION_CASES)
def test_attention_equals_plain_in_the_full_forward(attention, block):
    """Logits (pad queries included: a fully masked row stays finite) and gradients; the
    blocks divide the 14 columns (7) or not (4, 5: padded), GQA, left padding."""
    tokens, valid = rows()
    cfg = with_(attention=attention, attention_block=block)

    def f(p):
        logits = forward(cfg, p, tokens, valid)
        return jnp.mean(token_logprobs(logits[:, :-1], tokens[:, 1:]) * valid[:, 1:]), logits
    got = jax.jit(jax.value_and_grad(f, has_aux=True))(params())
    assert np.all(np.isfinite(np.asarray(got[0][1])))
    assert_close(got, plain_forward())


@pytest.mark.parametrize("attention,block", [("blockwise", 7), ("blockwise", 4), pytest.param(
    "dot_product", 512, marks=pytest.mark.slow)])
def test_attention_equals_plain_in_the_shared_prompt_pass(attention, block):
    """The prefill (6 queries on 14 cache slots) and the completion pass (8 queries after 6
    cached keys: causal offset 6) of `completion_logprobs(group_size=4)`."""
    cfg = with_(attention=attention, attention_block=block)
    assert_close(logprob_loss(cfg, G), plain_logprob_loss(G))


@pytest.mark.parametrize("attention", ["blockwise", pytest.param("dot_product",
                                                                 marks=pytest.mark.slow)])
def test_sampler_unchanged_with_blockwise_prefill(attention):
    """Greedy tokens and log-probs, and a tempered draw (tokens, log-probs, entropies), of the
    sampler with the prefill (6 prompt tokens into a 16-slot cache) in blocks of 4."""
    tokens, valid = rows()
    prompt, prompt_mask = tokens[::G, :P], valid[::G, :P]
    cfg = with_(attention=attention, attention_block=4)
    for scfg in (SamplingConfig(max_new_tokens=10, greedy=True, stop_tokens=(-1,)),
                 SamplingConfig(max_new_tokens=10, num_samples=3, temperature=0.8)):
        run = lambda c: jax.jit(functools.partial(sample, c, scfg=scfg))(
            params(), prompt, prompt_mask, jax.random.PRNGKey(5))
        want, got = run(CFG), run(cfg)
        np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(want.tokens))
        np.testing.assert_allclose(np.asarray(got.logprobs), np.asarray(want.logprobs), atol=1e-5)
        np.testing.assert_allclose(np.asarray(got.entropies), np.asarray(want.entropies),
                                   atol=1e-5)


def test_blockwise_attention_cuts_the_compiled_temp_memory():
    """Forward + backward of one layer on 1024 tokens: blockwise (blocks of 128) keeps no
    [T, S] scores or probabilities, the plain path keeps them per head."""
    cfg = get_model_config("tiny", n_layers=1)
    p = init_params(cfg, jax.random.PRNGKey(0))
    tokens, valid = jnp.ones((1, 1024), jnp.int32), jnp.ones((1, 1024), bool)

    def grad(c):
        return jax.grad(lambda p: -jnp.mean(token_logprobs(forward(c, p, tokens, valid)[:, :-1],
                                                           tokens[:, 1:])))
    plain = temp_bytes(grad(cfg), p)
    blockwise = temp_bytes(grad(dataclasses.replace(cfg, attention="blockwise",
                                                    attention_block=128)), p)
    print(f"attention temp memory, fwd+bwd at T=1024: plain {plain / 2**20:.1f} MiB, "
          f"blockwise(128) {blockwise / 2**20:.1f} MiB")
    assert blockwise < 0.5 * plain


# -------------------------------------------------------------------- chunked log-probs

CHUNKS = [dict(logits_chunk=4), dict(logits_chunk=3), dict(logits_chunk=4, vocab_chunk=32),
          dict(logits_chunk=8, vocab_chunk=12)]


@pytest.mark.parametrize("group_size", [1, G])
@pytest.mark.parametrize("chunks", CHUNKS, ids=lambda c: "-".join(map(str, c.values())))
def test_chunked_logprobs_equal_the_unchunked_path(chunks, group_size):
    """log-probs, entropies, loss and gradients; chunks that divide T or not (3: padded), over
    the whole vocabulary or 96 / 32 and 96 / 12 chunks of it."""
    assert_close(logprob_loss(with_(**chunks), group_size), plain_logprob_loss(group_size))


@pytest.mark.slow   # each feature alone is in the default suite
def test_chunked_logprobs_with_an_untied_head_and_remat_and_blockwise():
    """The lm_head kernel as the unembedding, with the other two options on."""
    untied = dataclasses.replace(CFG, tied_embeddings=False)
    p = init_params(untied, jax.random.PRNGKey(3))
    tokens, valid = rows()

    def loss(cfg):
        def f(p):
            logp, ent = completion_logprobs(cfg, p, tokens, valid, P, TEMPERATURE, True, G)
            return jnp.mean(logp * weights()) + 0.1 * jnp.mean(ent), (logp, ent)
        return jax.jit(jax.value_and_grad(f, has_aux=True))(p)
    fast = dataclasses.replace(untied, logits_chunk=4, vocab_chunk=32, remat="block",
                               attention="blockwise", attention_block=5)
    assert_close(loss(fast), loss(untied))


def test_chunked_sequence_outputs_and_rows_logprobs():
    """PPO's hidden states and UFT's prompt log-probs (`sequence_outputs`), and
    `rows_logprobs`, values and gradients."""
    tokens, valid = rows()
    chunked = with_(logits_chunk=3, vocab_chunk=32)

    def outputs(cfg):
        def f(p):
            o = sequence_outputs(cfg, p, tokens, valid, P, TEMPERATURE, with_entropy=True,
                                 with_hidden=True, with_prompt=True)
            loss = (jnp.mean(o["logp"]) + jnp.mean(o["entropy"]) + jnp.mean(o["prompt_logp"])
                    + jnp.mean(o["hidden"] ** 2))
            return loss, o
        return jax.jit(jax.value_and_grad(f, has_aux=True))(params())
    assert_close(outputs(chunked), outputs(CFG))
    batch = {"tokens": tokens, "valid": valid, "mask": valid[:, P:].astype(jnp.float32)}
    assert_close(rows_logprobs(chunked, params(), batch, TEMPERATURE, with_entropy=True),
                 rows_logprobs(CFG, params(), batch, TEMPERATURE, with_entropy=True))


def test_chunked_logprobs_cut_the_compiled_temp_memory():
    """Loss + gradient of 8 rows x 64 completion tokens on a 4096-token vocabulary: the
    [8, 64, 4096] logits exist in 8-column chunks only (and 512-column vocabulary chunks)."""
    cfg = get_model_config("tiny", n_layers=1, vocab_size=4096)
    p = init_params(cfg, jax.random.PRNGKey(0))
    tokens, valid = jnp.ones((8, 16 + 64), jnp.int32), jnp.ones((8, 16 + 64), bool)

    def grad(c):
        return jax.grad(lambda p: -jnp.mean(
            completion_logprobs(c, p, tokens, valid, 16, TEMPERATURE, True)[0]))
    sizes = {name: temp_bytes(grad(dataclasses.replace(cfg, **kw)), p) for name, kw in
             (("unchunked", {}), ("logits_chunk=8", dict(logits_chunk=8)),
              ("+vocab_chunk=512", dict(logits_chunk=8, vocab_chunk=512)))}
    print("log-prob temp memory, loss+grad, V=4096: "
          + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    assert sizes["logits_chunk=8"] < 0.5 * sizes["unchunked"]
    assert sizes["+vocab_chunk=512"] < sizes["logits_chunk=8"]


# ------------------------------------------------------------------------------ config

def cfg_with(**overrides):
    """configs/grpo_arith.py at size nano (max_new_tokens 5, vocabulary 64) with `a__b=v`."""
    cfg = grpo_arith.get_config("size=nano")
    for key, value in overrides.items():
        *path, leaf = key.split("__")
        functools.reduce(lambda c, k: c[k], path, cfg)[leaf] = value
    return cfg


@pytest.mark.parametrize("overrides,key", [
    ({"model__remat": "blocks"}, "model.remat"),
    ({"model__remat": "save_only_these_names"}, "model.remat"),   # a factory, not a policy
    ({"model__attention": "flash"}, "model.attention"),
    ({"model__attention_block": 0}, "model.attention_block"),
    ({"model__attention_block": -8}, "model.attention_block"),
    ({"model__logits_chunk": -1}, "model.logits_chunk"),
    ({"model__logits_chunk": 3}, "model.logits_chunk"),            # does not divide 5
    ({"model__vocab_chunk": -4, "model__logits_chunk": 5}, "model.vocab_chunk"),
    ({"model__vocab_chunk": 16}, "model.vocab_chunk"),             # without logits_chunk
])
def test_bad_memory_option_is_refused_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match="^config " + re.escape(key) + ": "):
        validate(cfg_with(**overrides))


def test_refusals_say_what_to_set():
    with pytest.raises(UserError, match=r"known: \['none', 'block', .*'dots_saveable'"):
        validate(cfg_with(model__remat="blocks"))
    with pytest.raises(UserError, match=r"sampling.max_new_tokens=5: set it to one of \[1, 5\]"):
        validate(cfg_with(model__logits_chunk=2))


def test_vocab_chunk_not_dividing_the_vocabulary_is_refused_by_build_model():
    cfg = validate(cfg_with(model__logits_chunk=5, model__vocab_chunk=24))
    with pytest.raises(UserError, match=r"^config model.vocab_chunk: 24 does not divide the "
                                        r"model's vocabulary \(64\)"):
        build_model(cfg)
    cfg.model.vocab_chunk = 16
    model_cfg, _ = build_model(cfg)
    assert (model_cfg.logits_chunk, model_cfg.vocab_chunk) == (5, 16)


def test_a_config_saved_before_the_fields_reads_the_defaults():
    cfg = cfg_with()
    for key in ("remat", "attention", "attention_block", "logits_chunk", "vocab_chunk"):
        del cfg.model[key]
    model_cfg, _ = build_model(validate(cfg))
    default = ModelConfig()
    assert [getattr(model_cfg, k) for k in ("remat", "attention", "attention_block",
                                            "logits_chunk", "vocab_chunk")] == \
        [default.remat, default.attention, default.attention_block, default.logits_chunk,
         default.vocab_chunk]


@pytest.mark.parametrize("fields,match", [
    (dict(remat="all"), "model.remat"), (dict(attention="flash"), "model.attention"),
    (dict(attention_block=0), "model.attention_block"), (dict(logits_chunk=-2), "model.logits"),
    (dict(vocab_chunk=10), "model.vocab_chunk=10 does not divide the vocabulary"),
])
def test_model_config_refuses_bad_values(fields, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        get_model_config("nano", **fields)

"""Python multi-turn environments (rlpt.envs.multiturn): one KV cache across turns, environment
tokens out of the loss, no recompile per turn, bad environments never crash the rollout, and one
RL step trains on them. A tiny random model over SmolLM2-135M-Instruct's real tokenizer and chat
template (../shared/data/smollm2)."""
import os

import jax
import numpy as np
import pytest

from conftest import SHARED_DATA
from rlpt.envs.environment import Chat, Environment, prompt_batch
from rlpt.envs.multiturn import EnvRunner, env_teacher_inputs
from rlpt.envs.rubric import Rubric
from rlpt.errors import UserError
from rlpt.logprobs import completion_logprobs
from rlpt.models import get_model_config, init_params
from rlpt.sampling import SamplingConfig

GGUF = os.path.join(SHARED_DATA, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
pytestmark = pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")
CFG = get_model_config("tiny", vocab_size=49152, d_model=32, n_heads=2, n_kv_heads=1, d_ff=64)
DATA = [{"prompt": f"Guess my number ({i}).", "answer": str(i)} for i in range(4)]


@pytest.fixture(scope="module")
def chat():
    from rlpt.tokenizers import load_tokenizer
    return Chat(load_tokenizer(GGUF))


@pytest.fixture(scope="module")
def params():
    p = init_params(CFG, jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda x: x * 2.0 if x.ndim == 2 else x, p)


def scfg_for(chat, T=96, G=2):
    # Many stop ids (besides <|im_end|>) so that a random model ends some turns itself and
    # others at the cap: both ways a turn can close are exercised.
    stops = (chat.tok.eos_id,) + tuple(range(200, 4000))
    return SamplingConfig(max_new_tokens=T, num_samples=G, stop_tokens=stops,
                          pad_id=chat.tok.pad_id)


def reply_after(state, messages):
    """Says how many turns were played; done after the third policy turn for even answers."""
    done = state["turn"] >= 3 and int(state["answer"]) % 2 == 0
    return [{"role": "user", "content": f"Not yet: turn {state['turn']}."}], done


def env_with(respond, max_turns=4):
    return Environment(dataset=DATA, rubric=Rubric([lambda completion: float(len(completion))]),
                       env_response=respond, max_turns=max_turns, system_prompt="Play.")


def run(chat, params, env, rows=(0, 1), turn_tokens=12, seed=0, T=96):
    scfg = scfg_for(chat, T)
    runner = EnvRunner(env, chat, CFG, scfg, turn_tokens=turn_tokens, max_reply=32)
    batch = prompt_batch(env, chat, list(rows), 48, chat.tok.pad_id)
    out, eps, m = runner.rollout(params, batch, jax.random.PRNGKey(seed))
    return runner, batch, out, eps, m


def test_turns_continue_one_cache_and_match_teacher_forcing(chat, params):
    runner, batch, out, eps, m = run(chat, params, env_with(reply_after))
    out = jax.device_get(out)
    assert m["env/turns"] > 1 and m["env/capped_turns"] > 0
    assert any(ep["completion"][0]["role"] == "assistant" and len(ep["completion"]) >= 5
               for ep in eps)
    # environment tokens: in the sequence, never in the loss mask
    assert out.env_mask.sum() > 0
    assert np.all(out.mask * out.env_mask == 0)
    assert np.all(out.valid == np.maximum(out.mask, out.env_mask))
    # compacted: each row's real tokens are contiguous from column 0
    for v in out.valid:
        k = int(v.sum())
        assert np.all(v[:k] == 1) and np.all(v[k:] == 0)
    # the log-probs recorded while sampling equal teacher forcing over the compacted rows
    tokens, valid = env_teacher_inputs(batch, out, runner.scfg.num_samples)
    logp, _ = completion_logprobs(CFG, params, tokens, valid, batch["prompt"].shape[1], 1.0)
    np.testing.assert_allclose(np.asarray(logp) * out.mask, out.logprobs, atol=2e-4)
    # a row's first reply is the chat template's rendering after the first turn
    n = next(i for i, ep in enumerate(eps) if len(ep["completion"]) >= 3)
    ep = eps[n]
    hist = ep["prompt"] + ep["completion"][:1]
    policy = out.tokens[n][out.mask[n] > 0]
    first_turn_len = int(np.argmax(out.env_mask[n]))
    ids = chat.reply_ids(hist, ep["completion"][1:2],
                         turn_closed=int(policy[first_turn_len - 1]) in runner.scfg.stop_tokens)
    got = out.tokens[n][first_turn_len:first_turn_len + len(ids)].tolist()
    assert got == ids


def test_no_recompile_across_turns_and_steps(chat, params):
    runner, batch, *_ = run(chat, params, env_with(reply_after))
    progs = runner.programs
    for seed, rows in ((1, (2, 3)), (2, (1, 0))):
        progs_out = runner.rollout(params, prompt_batch(runner.env, chat, list(rows), 48,
                                                        chat.tok.pad_id),
                                   jax.random.PRNGKey(seed))
        assert progs_out[2]["env/turns"] > 1
    assert progs.turn._cache_size() == 1
    assert progs.start._cache_size() == 1
    assert progs.env._cache_size() <= len(runner.buckets)


def test_bad_environments_never_crash(chat, params):
    calls = {"n": 0}

    def flaky(state, messages):
        calls["n"] += 1
        kind = calls["n"] % 4
        if kind == 0:
            raise RuntimeError("the game server fell over")
        if kind == 1:
            return "not a list", False
        if kind == 2:
            return [{"role": "user", "content": "x" * 500}], False   # cut to the largest bucket
        return [{"role": "user", "content": "again"}], False          # never says done

    _, _, out, eps, m = run(chat, params, env_with(flaky, max_turns=6), rows=(0, 1, 2, 3))
    assert m["env/errors"] > 0 and m["env/reply_cut"] > 0
    assert all(1 <= len([c for c in ep["completion"] if c["role"] == "assistant"]) <= 6
               for ep in eps)
    assert any("the game server fell over" in e for ep in eps
               for e in ep["state"].get("errors", []))
    # the turn cap ends an environment that never says done
    forever = env_with(lambda s, msgs: ([{"role": "user", "content": "more"}], False), 3)
    _, _, out, eps, m = run(chat, params, forever)
    assert m["env/turns"] == 3.0 and m["env/errors"] == 0


def test_out_of_room_ends_episodes(chat, params):
    forever = env_with(lambda s, msgs: ([{"role": "user", "content": "more"}], False), 8)
    _, _, out, eps, m = run(chat, params, forever, T=40, turn_tokens=12)
    assert m["env/out_of_room"] > 0 and m["env/turns"] < 8


def test_bad_environment_config():
    with pytest.raises(UserError, match="row 1 has no 'prompt'"):
        Environment(dataset=[{"prompt": "a"}, {"question": "b"}], rubric=Rubric([]))
    with pytest.raises(UserError, match="needs an env_response"):
        Environment(dataset=DATA, rubric=Rubric([]), max_turns=3)

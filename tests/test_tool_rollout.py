"""Multi-turn tool rollouts: environment semantics against a Python replay, loss masks, turn
limit, rollout log-probs == teacher-forced log-probs, and the generic fused step with the tool
rollout (`tool_rollout`, the rollout argument of the step spec)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tool_calc
from rlpt.config import base_config, optim_config, validate
from rlpt.envs.calculator import reference_eval, reference_render
from rlpt.envs.tool_rollout import (ToolConfig, ToolSampleOutput, completion_source,
                                    tool_completion_inputs, tool_sample)
from rlpt.logprobs import completion_logprobs
from rlpt.models import get_model_config, init_params
from rlpt.optim import make_optimizer, optim_hparams
from rlpt.sampling import PLAIN_ROLLOUT, SamplingConfig, completion_inputs
from rlpt.state import new_state
from rlpt.step import make_fused_step, make_sft_step, reward_inputs, update_phase
from rlpt.build import build_rl, task_reward
from rlpt.tasks.tool_task import ToolMultiplicationTask, tool_answer_reference
from rlpt.tokenizers import CharTokenizer

TOK = CharTokenizer()
EOS = TOK.eos_id
NANO = get_model_config("nano")
TASK = ToolMultiplicationTask()


# ------------------------------------------------------------------ a scripted (bigram) policy

def bigram_apply(table, toks, pos, mask, cache, idx):
    """A policy whose logits depend only on the last fed token: `params` is a [64, 64] table."""
    return table[toks], cache


def script(pairs, default=None):
    """Near-deterministic bigram table from {'a': 'b'} (default: eos after anything else)."""
    t = np.full((64, 64), -50.0, np.float32)
    t[:, EOS if default is None else TOK.stoi[default]] = 50.0
    for a, b in pairs.items():
        t[TOK.stoi[a]] = -50.0
        t[TOK.stoi[a], EOS if b == "<eos>" else TOK.stoi[b]] = 50.0
    return t


@functools.lru_cache(maxsize=None)
def _scripted_sampler(T, G, max_calls):
    scfg = SamplingConfig(max_new_tokens=T, num_samples=G)
    return jax.jit(functools.partial(tool_sample, NANO, scfg=scfg,
                                     tcfg=ToolConfig(max_calls=max_calls), apply_fn=bigram_apply))


def run_scripted(table, prompt_text, T, max_calls, G=1, seed=0):
    """Rollout of a scripted policy; prompts are left-padded to 8 so runs share compilations."""
    ids = TOK.encode(prompt_text, bos=True)
    prompt = jnp.asarray([[0] * (8 - len(ids)) + ids])
    fn = _scripted_sampler(T, G, max_calls)
    return jax.device_get(fn(jnp.asarray(table), prompt, prompt != 0, jax.random.PRNGKey(seed)))


def replay(row_tokens, row_mask, max_calls, max_len=24):
    """Pure-Python environment: given the model's tokens (where mask == 1) in order, rebuild the
    sequence the environment must produce. Returns (tokens, kinds, n_calls, n_ok, unanswered)
    with kinds 'm' (model) / 't' (tool)."""
    T = len(row_tokens)
    model_tokens = [int(t) for t, m in zip(row_tokens, row_mask) if m]
    out, kinds, pending = [], [], []
    in_call, body, n_calls, n_ok, unans = False, "", 0, 0, 0
    it = iter(model_tokens)
    while len(out) < T:
        if pending:
            out.append(pending.pop(0))
            kinds.append("t")
            continue
        tok = next(it, None)
        if tok is None:
            break
        out.append(tok)
        kinds.append("m")
        if tok == EOS:
            break
        ch = TOK.itos[tok]
        if not in_call and ch == "[":
            in_call, body = True, ""
        elif in_call and ch == "]":
            in_call = False
            if n_calls < max_calls:
                value, _ = reference_eval(body, max_len)
                pending = TOK.encode(reference_render(value))
                n_calls += 1
                n_ok += value is not None
            else:
                unans += 1
        elif in_call:
            body += ch if 0 <= tok < 64 and tok > 3 else "\x00"
    return out, kinds, n_calls, n_ok, unans


def check_against_replay(out: ToolSampleOutput, max_calls):
    for i in range(out.tokens.shape[0]):
        toks, kinds, n_calls, n_ok, unans = replay(out.tokens[i], out.mask[i], max_calls)
        n = len(toks)
        np.testing.assert_array_equal(out.tokens[i, :n], toks)
        np.testing.assert_array_equal(out.mask[i, :n], [k == "m" for k in kinds])
        np.testing.assert_array_equal(out.tool_mask[i, :n], [k == "t" for k in kinds])
        assert np.all(out.valid[i, :n] == 1) and np.all(out.valid[i, n:] == 0)
        assert np.all(out.mask[i, n:] == 0) and np.all(out.tool_mask[i, n:] == 0)
        assert np.all(out.logprobs[i][out.tool_mask[i] > 0] == 0)
        assert (out.num_calls[i], out.call_ok[i], out.unanswered[i]) == (n_calls, n_ok, unans)
        assert out.lengths[i] == out.mask[i].sum()


# ------------------------------------------------------------------ scripted tests

LOOP = {"=": "[", "[": "1", "1": "+", "+": "2", "2": "]", ">": "[", "]": "9", "9": "["}


@pytest.mark.parametrize("max_calls", [0, 1, 3])
def test_turn_limit_and_masks(max_calls):
    """The policy calls `[1+2]` forever: exactly max_calls results `<3>` are injected, later
    calls are unanswered; tool tokens are in `tokens` with mask 0 and log-prob 0."""
    out = run_scripted(script(LOOP), "12*3=", T=40, max_calls=max_calls)
    text = TOK.decode(out.tokens[0], stop_at_eos=False)
    assert text.count("<3>") == max_calls
    assert text.startswith("[1+2]<3>" * max_calls + "[1+2]9[1+2]9")
    assert int(out.num_calls[0]) == max_calls and int(out.call_ok[0]) == max_calls
    assert int(out.unanswered[0]) == text.count("]") - max_calls > 0
    assert out.tool_mask.sum() == 3 * max_calls
    tool_chars = "".join(TOK.itos[t] for t, m in zip(out.tokens[0], out.tool_mask[0]) if m)
    assert tool_chars == "<3>" * max_calls
    check_against_replay(out, max_calls)


def test_error_result_then_answer_and_eos():
    """`[1+]` is malformed -> `<?>`; the model then answers `7` and stops; the reward reads
    the answer after the last tool token and the tool success from the result."""
    out = run_scripted(script({"=": "[", "[": "1", "1": "+", "+": "]", ">": "7", "7": "<eos>"}),
                       "3+4=", T=40, max_calls=1)
    assert TOK.decode(out.tokens[0]) == "[1+]<?>7" and bool(out.stopped[0])
    assert (int(out.num_calls[0]), int(out.call_ok[0])) == (1, 0)
    target = np.asarray([TOK.encode("7") + [0] * 4], np.int32)
    r, aux = TASK.reward(out.tokens, completion_source(out), target, np.asarray([1]))
    assert bool(aux["correct"][0]) and float(aux["tool_success"][0]) == 0.0
    check_against_replay(out, 1)


def test_budget_truncates_a_result():
    out = run_scripted(script(LOOP), "1=", T=7, max_calls=3)
    assert TOK.decode(out.tokens[0], stop_at_eos=False) == "[1+2]<3"
    assert out.tool_mask[0].tolist() == [0, 0, 0, 0, 0, 1, 1] and not out.stopped[0]


def test_random_policies_match_python_replay():
    """Random bigram policies biased to call-like tokens, sampled: whatever the model writes,
    the environment injects exactly what the pure-Python replay says."""
    rng = np.random.default_rng(0)
    table = rng.normal(0, 1, (64, 64)).astype(np.float32)
    table[:, TOK.ids_of("[]0123456789+-*")] += 3.0
    table[:, TOK.ids_of("[]")] += 1.0
    table[:, EOS] += 0.5
    out = run_scripted(table, "12*34=", T=48, max_calls=2, G=96, seed=1)
    assert out.num_calls.sum() > 30 and out.call_ok.sum() > 5
    assert (out.call_ok < out.num_calls).any() and out.unanswered.sum() > 0 and out.stopped.any()
    check_against_replay(out, 2)


# ------------------------------------------------------------------ with a model

@pytest.fixture(scope="module")
def sft_params():
    """A nano model after 60 SFT steps on tool demos: it calls the tool on part of its samples."""
    o = optim_config(3e-3, warmup_steps=5)
    opt = make_optimizer(o)
    state = new_state(init_params(NANO, jax.random.PRNGKey(0)), opt, 0)
    step = make_sft_step(NANO, opt, loss_mask="solution_loss_mask")  # the tool SFT step
    hp = {"optim": optim_hparams(o)}
    for s in range(60):
        state, m = step(state, TASK.make_batch(0, s, 32), hp)
    return state.params


@pytest.fixture(scope="module")
def model_rollout(sft_params):
    batch = TASK.make_batch(5, 0, 16)
    scfg = SamplingConfig(max_new_tokens=24, num_samples=4, temperature=1.0)
    fn = jax.jit(functools.partial(tool_sample, NANO, scfg=scfg, tcfg=ToolConfig(max_calls=2)))
    out = fn(sft_params, batch["prompt"], batch["prompt_mask"], jax.random.PRNGKey(3))
    return batch, out


def test_model_logprobs_equal_teacher_forced(sft_params, model_rollout):
    batch, out = model_rollout
    P = batch["prompt"].shape[1]
    tokens, valid = tool_completion_inputs(batch["prompt"], batch["prompt_mask"], out, 4)
    lp, _ = jax.jit(functools.partial(completion_logprobs, NANO, prompt_width=P,
                                      temperature=1.0))(sft_params, tokens, valid)
    mask = np.asarray(out.mask)
    tool = np.asarray(out.tool_mask)
    after_tool = mask * (np.cumsum(tool, axis=1) > 0)  # model tokens that follow a tool result
    assert tool.sum() > 20 and after_tool.sum() > 20   # the comparison covers post-tool tokens
    np.testing.assert_allclose(np.asarray(lp) * mask, np.asarray(out.logprobs), atol=1e-4)
    check_against_replay(jax.device_get(out), 2)
    # Hiding the tool tokens from teacher forcing (the plain sampler's inputs) breaks equality.
    tokens0, valid0 = completion_inputs(batch["prompt"], batch["prompt_mask"], out, 4)
    lp0, _ = completion_logprobs(NANO, sft_params, tokens0, valid0, P, 1.0)
    assert np.abs((np.asarray(lp0) - np.asarray(out.logprobs)) * after_tool).max() > 1e-2


def test_device_reward_matches_host_reference(model_rollout):
    batch, out = model_rollout
    out = jax.device_get(out)
    src = np.asarray(completion_source(out))
    rep = lambda x: np.repeat(x, 4, axis=0)
    # plus the SFT demos themselves (source 2 on the demo's `<...>`), every 3rd answer corrupted
    sol = batch["solution"].copy()
    sol_src = batch["solution_mask"] + (batch["solution_mask"] - batch["solution_loss_mask"])
    last = (batch["solution_mask"].sum(1) - 2)[::3]
    sol[np.arange(16)[::3], last] = TOK.stoi["0"] + (sol[np.arange(16)[::3], last] - 3 + 1) % 10
    tokens = np.concatenate([out.tokens, np.pad(sol, ((0, 0), (0, 3)))])
    source = np.concatenate([src, np.pad(sol_src, ((0, 0), (0, 3)))])
    target = np.concatenate([rep(batch["target"]), batch["target"]])
    tlen = np.concatenate([rep(batch["target_len"]), batch["target_len"]])
    task = ToolMultiplicationTask(answer_reward=2.0, format_reward=1.0, tool_reward=1.0,
                                  call_cost=0.25)
    r, aux = jax.device_get(jax.jit(task.reward)(tokens, source, target, tlen))
    np.testing.assert_allclose(task.host_reward(tokens, source, target, tlen), r, atol=1e-6)
    free = ToolMultiplicationTask(answer_reward=2.0, format_reward=1.0, tool_reward=1.0)
    r_free, _ = jax.device_get(jax.jit(free.reward)(tokens, source, target, tlen))
    assert aux["num_calls"].max() >= 1   # the charge: 0.25 per answered call
    np.testing.assert_allclose(r, r_free - 0.25 * aux["num_calls"], atol=1e-6)
    for i in range(len(tokens)):
        ref = tool_answer_reference(tokens[i], source[i],
                                    TOK.decode(target[i][:tlen[i]]), TOK)
        assert ref == pytest.approx({k: float(np.asarray(aux[k][i])) for k in ref}), i
    demo = aux["correct"][64:]
    assert demo.sum() == 16 - len(last) and not demo[::3].any()


def _tool_cfg():
    cfg = tool_calc.get_config("size=nano")
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    return validate(cfg)


def _build(cfg, params, task, monkeypatch, reward=None):
    """`build_rl` of a tool config, recording the ToolConfig its tool rollout was built with
    (the compiled protocol of the task's calculator environment)."""
    from rlpt.envs import calculator_env
    built = []
    real = calculator_env.tool_rollout
    monkeypatch.setattr(calculator_env, "tool_rollout",
                        lambda tcfg: built.append(tcfg) or real(tcfg))
    spec, state, hp, _ = build_rl(cfg, NANO, params, task, reward=reward)
    assert len(built) == 1
    return spec, state, hp, built[0]


def test_teacher_inputs_show_tool_tokens_and_change_the_update(sft_params, model_rollout,
                                                               monkeypatch):
    """The tool rollout's teacher-forcing rows are the plain rollout's on a tool-free rollout;
    with tool tokens they include them, and hiding them (valid := mask) would change the
    update."""
    cfg = _tool_cfg()
    batch, tool_out = model_rollout                  # 16 prompts x 4 samples
    spec, state, hp, _ = _build(cfg, sft_params, TASK, monkeypatch)
    base, tool = PLAIN_ROLLOUT, spec.rollout
    assert tool is not PLAIN_ROLLOUT and "reference" not in state.frozen  # beta 0: no reference
    no_tools = tool_out._replace(valid=tool_out.mask, tool_mask=jnp.zeros_like(tool_out.mask))
    for a, b in zip(base.teacher_inputs(batch, no_tools, 4),
                    tool.teacher_inputs(batch, no_tools, 4)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    tokens, valid = tool.teacher_inputs(batch, tool_out, 4)
    P = batch["prompt"].shape[1]
    np.testing.assert_array_equal(np.asarray(valid[:, P:]), np.asarray(tool_out.valid) > 0)
    assert float(tool_out.tool_mask.sum()) > 0
    np.testing.assert_array_equal(np.asarray(reward_inputs(spec, batch, tool_out, hp)[1]),
                                  np.asarray(tool_out.valid + tool_out.tool_mask))

    rewards = jnp.asarray(np.random.default_rng(0).random(64), jnp.float32)
    update = jax.jit(functools.partial(update_phase, spec))
    s1, m1 = update(state, batch, tool_out, rewards, hp)
    s2, _ = update(state, batch, tool_out._replace(valid=tool_out.mask), rewards, hp)
    assert np.isfinite(float(m1["loss"])) and float(m1["ratio_mean"]) == 1.0
    assert any(not np.allclose(a, b, atol=1e-7) for a, b in
               zip(jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s2.params)))


def test_tool_rl_step_two_steps(sft_params, monkeypatch):
    cfg = _tool_cfg()
    artist = ToolMultiplicationTask(answer_reward=2.0, format_reward=1.0, tool_reward=1.0)
    # format/tool terms: non-zero advantages
    spec, state, hp, tcfg = _build(cfg, sft_params, TASK, monkeypatch,
                                   reward=task_reward(artist, "device"))
    assert tcfg == ToolConfig(max_calls=2, max_call_len=24)
    step = make_fused_step(spec, donate=False)
    for s in range(2):
        state, m = step(state, TASK.make_batch(1, s, 4), hp)
        m = jax.device_get(m)
        for k in ("loss", "reward_mean", "accuracy", "call_rate", "call_success",
                  "tool_token_frac", "grad_norm", "response_len"):
            assert np.isfinite(m[k]), k
        assert float(m["ratio_mean"]) == 1.0 and m["reward_std"] > 0
    assert int(state.step) == 2
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(sft_params),
                                                        jax.tree_util.tree_leaves(state.params))]
    assert any(changed)


def test_lightning_rl_splits_tool_episodes_at_the_results(sft_params, model_rollout,
                                                           monkeypatch):
    """LightningRL on the tool rollout: a policy token's transition is the number of tool
    results before it, and the step counts the non-empty transitions of each episode."""
    cfg = _tool_cfg()
    cfg.algo = base_config("lightning_rl").algo
    cfg.algo.beta = 0.0
    cfg = validate(cfg)
    batch, out = model_rollout
    spec, state, hp, _ = _build(cfg, sft_params, TASK, monkeypatch)
    seg = np.asarray(spec.rollout.transitions(out))
    tool, mask = np.asarray(out.tool_mask), np.asarray(out.mask)
    starts = tool * (1 - np.pad(tool, ((0, 0), (1, 0)))[:, :-1])
    np.testing.assert_array_equal(seg, np.cumsum(starts, axis=1))
    per_row = [len({int(j) for j in seg[i][mask[i] > 0]}) for i in range(len(seg))]
    assert max(per_row) >= 2   # some episodes made a call and wrote after its result
    rewards = jnp.asarray(np.random.default_rng(0).random(64), jnp.float32)
    _, m = jax.jit(functools.partial(update_phase, spec))(state, batch, out, rewards, hp)
    np.testing.assert_allclose(float(m["transitions_per_episode"]), np.mean(per_row), rtol=1e-6)
    assert float(m["transitions_merged"]) == 0.0 and np.isfinite(float(m["loss"]))


# ------------------------------------------------------------------ one game, two protocols

def _turns(tokens, tool_mask, n):
    """A compiled episode's first n tokens as (policy turn ids, the tool reply ids after it)."""
    turns, i = [], 0
    while i < n:
        j = i
        while j < n and not tool_mask[j]:
            j += 1
        k = j
        while k < n and tool_mask[k]:
            k += 1
        turns.append((list(tokens[i:j]), list(tokens[j:k])))
        i = k
    return turns


def test_python_and_compiled_protocols_of_the_calculator_play_the_same_game():
    """`ToolMultiplicationTask.calculator_environment`: for sampled compiled episodes (a random
    policy biased to calls, digits and eos), the Python `env_response` fed the same policy
    turns answers each call with the tokens the device injected, and the rubric's `correct`
    equals the device reward's, on every episode both protocols define alike (every `]` closes
    an answered call, the episode ends at eos, no special token: rlpt.envs.calculator_env)."""
    from rlpt.envs.calculator_env import calculator_environment
    from rlpt.tasks.tool_task import tool_answer_reward
    rng = np.random.default_rng(4)
    table = rng.normal(0, 1, (64, 64)).astype(np.float32)
    table[:, TOK.ids_of("[]0123456789+*")] += 3.0
    table[:, TOK.ids_of("6")] += 2.0
    table[TOK.ids_of("6>"), EOS] += 6.0
    table[:, TOK.ids_of("[")] += 1.0
    out = run_scripted(table, "2*3=", T=48, max_calls=2, G=256, seed=2)
    env = calculator_environment([{"prompt": "2*3=", "answer": "6"}], ToolConfig(max_calls=2))
    assert env.compiled is not None and env.max_turns == 3
    _, aux = tool_answer_reward(out.tokens, completion_source(out), np.full((256, 1), TOK.stoi["6"]),
                                np.ones(256, np.int32))
    compared, calls, errors, right = 0, 0, 0, 0
    for i in range(256):
        n = int(out.valid[i].sum())
        toks = out.tokens[i, :n]
        turns = _turns(toks, out.tool_mask[i, :n], n)
        policy = [t for turn, _ in turns for t in turn]
        closes = sum(t == TOK.stoi["]"] for t in policy)
        if (toks[-1] != EOS or closes != out.num_calls[i] or out.unanswered[i]
                or any(t <= 3 for t in policy[:-1])):
            continue   # outside what both protocols define alike
        state = env.initial_state(env.dataset[0])
        messages = env.prompt_messages(env.dataset[0])
        for turn, reply in turns:
            messages.append({"role": "assistant", "content": TOK.decode(turn)})
            new, done = env.env_response(state, messages)
            if reply:
                assert (new, done) == ([{"role": "tool", "content": TOK.decode(reply)}], False)
                messages += new
                errors += TOK.decode(reply) == "<?>"
            else:
                assert (new, done) == ([], True)
        state["stopped"] = True
        r, _ = env.rubric.score([{"prompt": messages[:1], "completion": messages[1:],
                                  "answer": "6", "state": state, "info": {}}], 1)
        r = float(r[0])
        assert r == float(aux["correct"][i]), (TOK.decode(toks), r)
        compared, calls, right = compared + 1, calls + len(turns) - 1, right + r
    # the comparison covers answered calls, error results and both rubric outcomes
    assert compared >= 40 and calls >= 20 and errors >= 3 and 3 <= right < compared, \
        (compared, calls, errors, right)

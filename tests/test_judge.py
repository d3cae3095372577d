"""LM-as-judge reward (rlpt.rewards.judge): prompt construction, a briefly trained judge that
ranks correct above incorrect addition answers, a 2-step fused RL run with the judge as the
reward (its params an argument of the program), HF save/load of a judge, config checks."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from rlpt.config import validate
from rlpt.models import get_model_config, init_params
from rlpt.models.transformer import forward
from rlpt.rewards.judge import judge_config, judge_ids, judge_reward
from rlpt.rewards.judge_train import answer_completions, train_verifier, verifier_examples
from rlpt.rewards.prompt_target import prompt_as_target
from rlpt.step import fused_step, make_fused_step
from rlpt.tasks.synthetic import AdditionTask
from rlpt.build import build_rl, build_task

TASK = AdditionTask(min_digits=1, max_digits=1)
TOK = TASK.tokenizer
IDS = judge_ids(judge_config(), TOK)
TINY = get_model_config("tiny")
T = 4  # completion width of the hand-built responses


@pytest.fixture(scope="module")
def judge_params():
    """A tiny judge trained for 400 steps on yes/no verdicts (gold vs gold +- 1..10).

    After 200 steps the held-out ranking depended on the run's rounding: 0.62-0.86 over four
    init keys here, and 0.734 (< 0.75) on a machine with another CPU (issue 30). After 400 steps
    it was 0.87-0.96 over the same four keys (0.93 for key 1), so the 0.75 bar holds with a
    margin larger than the spread between inits, not only between CPUs."""
    params = init_params(TINY, jax.random.PRNGKey(1))
    params, losses = train_verifier(TINY, params, TASK, IDS, steps=400, batch_size=128, lr=1e-3,
                                    negatives=("near",))
    assert losses[-20:].mean() < losses[:20].mean() - 0.3
    return params


def _scorer(model_cfg, params, **kw):
    """The step's judge reward (`judge_reward`, reading `frozen["judge"]`) jitted, with `params`
    passed as the frozen judge: `fn(tokens, mask, target, target_len) -> (scores, aux)`."""
    reward = jax.jit(judge_reward(model_cfg, IDS, **kw))
    return lambda *a: reward({"judge": params}, *a)


def _completions(answers):
    """Completion rows `answer<eos>` padded to T, mask 1 through the eos."""
    return answer_completions(TOK, answers, T)


def _answer_pairs(n, seed=10_000):
    """Held-out prompts with the gold answer and a wrong one (gold + 1..5, or - when possible)."""
    b = prompt_as_target(TASK.make_batch(seed, 0, n))
    gold = [int(TOK.decode(TASK.make_batch(seed, 0, n)["target"][i])) for i in range(n)]
    rng = np.random.default_rng(0)
    wrong = [g - d if g >= d and rng.random() < 0.5 else g + d
             for g, d in zip(gold, rng.integers(1, 6, n))]
    return b, gold, wrong


def test_prompt_layout_is_exact():
    """Padding holes inside the judge row change nothing: the score equals the judge's score
    on the packed sequence `<bos> question response ?` (padding only after its end), and the
    rows match the training rows of judge_train."""
    nano = get_model_config("nano")
    params = init_params(nano, jax.random.PRNGKey(3))
    judge = _scorer(nano, params, stop_tokens=(TOK.eos_id,))
    fwd = jax.jit(lambda p, t, v: jax.nn.softmax(forward(nano, p, t, v), axis=-1))
    b, gold, wrong = _answer_pairs(6)
    tokens, mask = _completions(wrong)
    tokens[:, -1] = TOK.stoi["7"]  # junk after the eos, masked out by the stop token
    got, aux = judge(tokens, mask, b["target"], b["target_len"])
    packed = [TOK.encode(TOK.decode(b["target"][i]) + str(wrong[i]) + "?", bos=True)
              for i in range(6)]
    rows = np.zeros((6, 12), np.int32)
    for i, ids in enumerate(packed):
        rows[i, :len(ids)] = ids
    p = fwd(params, rows, rows > 0)[np.arange(6), [len(x) - 1 for x in packed]]
    p_yes, p_no = p[:, IDS.verdict[0]], p[:, IDS.verdict[1]]
    np.testing.assert_allclose(got, p_yes / (p_yes + p_no), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(aux["judge_p_yes"], p_yes, rtol=1e-4)
    ex = verifier_examples(TASK, 10_000, 0, 6, IDS, wrong_fraction=0.0)
    assert ex["correct"].all() and (ex["label"] == IDS.verdict[0]).all()
    ref = fwd(params, ex["tokens"], ex["valid"].astype(bool))[:, -1][:, jnp.asarray(IDS.verdict)]
    np.testing.assert_allclose(judge(*_completions(gold), b["target"], b["target_len"])[0],
                               ref[:, 0] / ref.sum(1), rtol=1e-4)


def test_padded_verifier_examples_label_the_padded_gold_right():
    """`padded_fraction`: answers zero-padded to the answer width, a padded gold labelled yes,
    a padded wrong answer no."""
    task = AdditionTask(min_digits=1, max_digits=2)
    ex = verifier_examples(task, 3, 0, 256, IDS, padded_fraction=0.5)
    b = task.make_batch(3, 0, 256)
    padded = 0
    for i in range(256):
        row = ex["tokens"][i][ex["valid"][i]]
        text = TOK.decode(row)                          # `12+34=046?`
        answer = text.split("=")[1].rstrip("?")
        gold = int(TOK.decode(b["target"][i][: b["target_len"][i]]))
        assert ex["correct"][i] == (answer != "" and int(answer) == gold), text
        assert ex["label"][i] == IDS.verdict[0 if ex["correct"][i] else 1]
        padded += len(answer) == 3 and answer[0] == "0"
    assert 60 < padded < 140 and ex["correct"].sum() > 100


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_trained_judge_ranks_correct_above_incorrect(judge_params):
    b, gold, wrong = _answer_pairs(128)
    reward = _scorer(TINY, judge_params, stop_tokens=(TOK.eos_id,))
    r_gold = np.asarray(reward(*_completions(gold), b["target"], b["target_len"])[0])
    r_wrong = np.asarray(reward(*_completions(wrong), b["target"], b["target_len"])[0])
    ranked = np.mean(r_gold > r_wrong)
    judge = _scorer(TINY, init_params(TINY, jax.random.PRNGKey(1)))
    untrained = lambda *a: judge(*a)[0]
    u_gold = np.asarray(untrained(*_completions(gold), b["target"], b["target_len"]))
    u_wrong = np.asarray(untrained(*_completions(wrong), b["target"], b["target_len"]))
    assert ranked >= 0.75, ranked
    assert r_gold.mean() - r_wrong.mean() > 0.2, (r_gold.mean(), r_wrong.mean())
    assert ranked > np.mean(u_gold > u_wrong) + 0.2  # the ranking comes from training


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_two_fused_rl_steps_with_the_judge_reward(tmp_path):
    """The trainer's path: a judge written as a HF checkpoint, loaded by `build_rl` into
    `state.frozen["judge"]`, and 2 fused RL steps scored by it. The judge is untrained (a
    trained one's ranking is test_trained_judge_ranks_correct_above_incorrect, slow: its 400
    training steps take most of this file's time); the path is the same."""
    from rlpt.models.loaders import save_hf_checkpoint
    judge_params = init_params(TINY, jax.random.PRNGKey(3))
    save_hf_checkpoint(str(tmp_path / "judge"), TINY, jax.device_get(judge_params))
    cfg = grpo_arith.get_config("size=nano")
    cfg.task.kwargs = dict(min_digits=1, max_digits=1)
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    cfg.reward.kind = "judge"
    cfg.reward.judge = judge_config(checkpoint=str(tmp_path / "judge"), checkpoint_format="hf")
    cfg = validate(cfg)
    nano = get_model_config("nano")
    spec, state, hp, make_batch = build_rl(cfg, nano, init_params(nano, jax.random.PRNGKey(0)),
                                           build_task(cfg))
    assert spec.models["judge"].d_model == TINY.d_model
    for a, b in zip(jax.tree_util.tree_leaves(state.frozen["judge"]),
                    jax.tree_util.tree_leaves(judge_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for k, v in make_batch(0).items():  # the trainer's batches carry the prompt in target
        np.testing.assert_array_equal(v, prompt_as_target(TASK.make_batch(cfg.seed + 1, 0, 4))[k])
    step = make_fused_step(spec, donate=False)
    s = state
    for i in range(2):
        s, m = step(s, prompt_as_target(TASK.make_batch(1, i, 4)), hp)
        m = jax.device_get(m)
        assert np.isfinite(m["loss"]) and 0 <= m["reward_mean"] <= 1 and m["reward_std"] > 0
        assert np.isfinite(m["reward_judge_verdict_mass"])
    assert int(s.step) == 2
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(state.params),
                                                        jax.tree_util.tree_leaves(s.params)))
    # The judge params are an argument of the compiled step (a frozen model of the state), not
    # baked-in constants: swapping them (same shapes, no retrace) changes the rewards of the
    # same rollout.
    batch = prompt_as_target(TASK.make_batch(1, 0, 4))
    traced = jax.jit(chex.assert_max_traces(lambda st, b, h: fused_step(spec, st, b, h), n=1))
    _, m1 = traced(state, batch, hp)
    other = jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype),
                                   init_params(TINY, jax.random.PRNGKey(5)), state.frozen["judge"])
    _, m2 = traced(state.replace(frozen=dict(state.frozen, judge=other)), batch, hp)
    chex.clear_trace_counter()
    assert float(m1["reward_mean"]) != float(m2["reward_mean"])


def test_judge_checkpoint_round_trip(tmp_path):
    from rlpt.models.loaders import load_hf_checkpoint, save_hf_checkpoint
    params = init_params(TINY, jax.random.PRNGKey(2))
    save_hf_checkpoint(str(tmp_path / "judge"), TINY, params)
    cfg, loaded = load_hf_checkpoint(str(tmp_path / "judge"))
    assert (cfg.d_model, cfg.n_layers, cfg.vocab_size, cfg.hd) == (128, 2, 64, TINY.hd)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("judge,needle", [
    (None, "reward.judge"),
    (judge_config(), "exactly one"),
    (judge_config(preset="tiny", checkpoint="x", checkpoint_format="hf"), "exactly one"),
    (judge_config(preset="huge"), "not a preset"),
    (judge_config(preset="tiny", yes="n"), "two different"),
    (judge_config(preset="tiny", suffix=""), "non-empty"),
    (judge_config(preset="tiny", mode="vote"), "mode"),
])
def test_judge_config_errors(judge, needle):
    cfg = grpo_arith.get_config("size=nano")
    cfg.reward.kind = "judge"
    if judge is not None:
        cfg.reward.judge = judge
    with pytest.raises(ValueError, match=needle):
        validate(cfg)


def test_verdict_must_be_one_token():
    with pytest.raises(ValueError, match="exactly one token"):
        judge_ids(judge_config(preset="tiny", yes="yes"), TOK)
    ids = judge_ids(judge_config(preset="tiny", mode="digits", score_tokens="012"), TOK)
    assert ids.verdict == tuple(TOK.ids_of("012"))


def test_digits_mode_is_the_expected_grade():
    from rlpt.rewards.judge import verdict_scores
    logits = jnp.full((1, 64), -1e9).at[0, jnp.asarray(TOK.ids_of("012"))].set(
        jnp.log(jnp.asarray([0.2, 0.3, 0.5])))
    s, aux = verdict_scores("digits", logits, tuple(TOK.ids_of("012")))
    np.testing.assert_allclose(s, [0.3 * 0.5 + 0.5 * 1.0], rtol=1e-5)
    np.testing.assert_allclose(aux["judge_verdict_mass"], [1.0], rtol=1e-5)

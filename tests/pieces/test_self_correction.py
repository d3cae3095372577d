"""Self-correction (MGRPO's layer 2, arXiv 2506.04746) as a measurement: the training-time
transition rates of rlpt.algorithms.mgrpo against numpy, and the evaluation-time `sc_*` rates
(`eval.self_correction`; the layer-2 prompts and second attempts of rlpt.pieces.self_correction)
against a prompt-by-prompt loop by hand, in rlpt.evaluation.rollout.evaluate and the sweep's vmapped
evaluation, plus the switch off and the config refusal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep_helpers import small_config
from rlpt.algorithms.mgrpo import layer2_transitions
from rlpt.config import validate
from rlpt.evaluation.metrics import self_correction_rates
from rlpt.pieces.self_correction import layer2_prompts, self_correction_rewards
from rlpt.sampling import SamplingConfig, sample
from rlpt.sweep.run import make_group_eval
from rlpt.build import build_model, build_task
from rlpt.evaluation.rollout import evaluate

INSTR = (59, 18)   # `|=` (configs/mgrpo_selfcorrect.py)
SC_KEYS = {"sc_wrong_to_right", "sc_right_to_wrong", "sc_acc_after"}


def test_layer2_transitions_match_numpy_on_a_hand_made_case():
    G = 3
    src = np.array([True, False, False, True])              # 4 layer-2 prompts' sources
    c2 = np.array([1, 1, 0,  1, 0, 0,  0, 0, 1,  0, 0, 0], bool)
    got = jax.device_get(jax.jit(layer2_transitions, static_argnums=2)(
        jnp.asarray(src), jnp.asarray(c2), G))
    s = np.repeat(src, G)
    want = {"layer2_wrong_to_right": c2[~s].mean(),        # 2 of 6
            "layer2_right_to_wrong": (~c2[s]).mean(),      # 4 of 6
            "layer2_from_wrong_frac": (~s).mean()}         # 6 of 12
    assert want == pytest.approx({"layer2_wrong_to_right": 2 / 6,
                                  "layer2_right_to_wrong": 4 / 6, "layer2_from_wrong_frac": 0.5})
    for k in want:
        assert float(got[k]) == pytest.approx(want[k])
    # no wrong source: the wrong -> right rate is 0, not NaN
    none = layer2_transitions(jnp.ones(2, bool), jnp.asarray([1, 0, 0, 1, 1, 1], bool), G)
    assert float(none["layer2_wrong_to_right"]) == 0.0
    assert float(none["layer2_from_wrong_frac"]) == 0.0
    assert float(none["layer2_right_to_wrong"]) == pytest.approx(2 / 6)


def test_self_correction_rates():
    r = self_correction_rates(np.array([1, 0, 0, 1, 0.]), np.array([1, 1, 0, 0, 0.]))
    assert r == {"sc_wrong_to_right": pytest.approx(1 / 3), "sc_right_to_wrong": 0.5,
                 "sc_acc_after": pytest.approx(0.4)}
    assert self_correction_rates(np.ones(3), np.ones(3))["sc_wrong_to_right"] == 0.0


class HalfOdd:
    """The held-out prompts of sweep_helpers' dense task, scored 1 when at least half of the
    completion's tokens have an odd id (a mix of right and wrong at random init)."""

    def __init__(self, base):
        self.base = base

    def eval_set(self, n):
        return self.base.eval_set(n)

    @staticmethod
    def reward(tokens, mask, target, target_len):
        hits = ((tokens % 2 == 1) * mask).sum(1)
        return (hits >= 0.5 * jnp.maximum(mask.sum(1), 1)).astype(jnp.float32), {}


@pytest.fixture(scope="module")
def setup():
    """A nano model (random init), the HalfOdd reward, 6 held-out prompts, 8 new tokens, and
    stop tokens that end some greedy answers early (taken from a first decode)."""
    c = small_config()
    c.sampling.max_new_tokens = 8
    c.eval.n_prompts = 6
    model_cfg, params = build_model(validate(c))
    task = HalfOdd(build_task(c))
    batch = task.eval_set(c.eval.n_prompts)
    probe = sample(model_cfg, params, batch["prompt"], batch["prompt_mask"], jax.random.PRNGKey(0),
                   SamplingConfig(max_new_tokens=8, greedy=True, stop_tokens=(2,)))
    toks = np.asarray(probe.tokens)
    c.sampling.stop_tokens = (2, int(toks[0, 2]), int(toks[1, 1]))
    c.algo.layer2_instruction_ids = INSTR
    c.eval.self_correction = True
    return validate(c), model_cfg, params, task, batch


def _by_hand(model_cfg, params, task, batch, cfg):
    """Prompt by prompt, no padding: greedy answer, prompt + answer (stop tokens dropped) +
    instruction, greedy second answer; their rewards, the second answers and the prompts."""
    stop = tuple(cfg.sampling.stop_tokens)
    scfg = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, greedy=True,
                          stop_tokens=stop)
    rng = jax.random.PRNGKey(0)
    decode = lambda ids: sample(model_cfg, params, jnp.asarray([ids], jnp.int32),
                                jnp.ones((1, len(ids)), jnp.int32), rng, scfg)
    r1, r2, seconds, prompts, early = [], [], [], [], 0
    for i in range(batch["prompt"].shape[0]):
        q = [int(t) for t, m in zip(batch["prompt"][i], batch["prompt_mask"][i]) if m]
        o1 = decode(q)
        n1 = int(np.asarray(o1.mask).sum())
        early += n1 < cfg.sampling.max_new_tokens
        answer = [int(t) for t in np.asarray(o1.tokens)[0, :n1] if int(t) not in stop]
        p2 = q + answer + list(INSTR)
        o2 = decode(p2)
        target, target_len = batch["target"][i:i + 1], batch["target_len"][i:i + 1]
        r1.append(float(task.reward(o1.tokens, o1.mask, target, target_len)[0][0]))
        r2.append(float(task.reward(o2.tokens, o2.mask, target, target_len)[0][0]))
        n2 = int(np.asarray(o2.mask).sum())
        seconds.append(np.asarray(o2.tokens)[0, :n2].tolist())
        prompts.append(p2)
    assert early, "no greedy answer ended early: the stop-token removal would be untested"
    return np.array(r1), np.array(r2), seconds, prompts


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_eval_self_correction_equals_a_loop_by_hand(setup):
    cfg, model_cfg, params, task, batch = setup
    r1, r2, seconds, prompts = _by_hand(model_cfg, params, task, batch, cfg)
    assert (r1 > 0.5).any() and (r1 <= 0.5).any(), r1   # both kinds of first attempt
    scfg = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, greedy=True,
                          stop_tokens=tuple(cfg.sampling.stop_tokens))
    keys = ("prompt", "prompt_mask", "target", "target_len")
    fn = jax.jit(lambda p, b: self_correction_rewards(
        model_cfg, p, b, task.reward, INSTR, scfg, jax.random.PRNGKey(5)))
    g1, g2, second = jax.device_get(fn(params, {k: batch[k] for k in keys}))
    np.testing.assert_array_equal(g1, r1)
    np.testing.assert_array_equal(g2, r2)
    for i, want in enumerate(seconds):
        n = int(second.mask[i].sum())
        assert second.tokens[i, :n].tolist() == want, i
    # the layer-2 prompts themselves: right-packed, valid part = the hand-built prompt
    first = sample(model_cfg, params, batch["prompt"], batch["prompt_mask"],
                   jax.random.PRNGKey(0), scfg)
    p2, m2 = jax.device_get(layer2_prompts(batch["prompt"], batch["prompt_mask"], first.tokens,
                                           first.mask, 1, 1, INSTR, scfg.stop_tokens, 0))
    for i, want in enumerate(prompts):
        assert p2[i][m2[i] > 0].tolist() == want and m2[i, -1] == 1
    # rlpt.evaluation.rollout.evaluate and the sweep's vmapped evaluation report the same rates
    want = self_correction_rates(r1, r2)
    assert 0 < want["sc_wrong_to_right"] < 1, want   # not a vacuous comparison
    res = evaluate(model_cfg, params, task, cfg, batch)
    assert {k: res[k] for k in SC_KEYS} == pytest.approx(want)
    assert res["greedy_acc"] == pytest.approx(np.mean(r1 > 0.5))
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), params)
    rows = make_group_eval(model_cfg, task, cfg)(stacked, [cfg.seed, cfg.seed + 1], batch)
    for row in rows:
        assert {k: row[k] for k in SC_KEYS} == pytest.approx(want)


def test_switch_off_leaves_the_eval_keys_and_values(setup):
    cfg, model_cfg, params, task, batch = setup
    on = evaluate(model_cfg, params, task, cfg, batch)
    off_cfg = cfg.copy_and_resolve_references()
    off_cfg.eval.self_correction = False
    absent = cfg.copy_and_resolve_references()
    del absent.eval["self_correction"]
    for c in (off_cfg, absent):
        off = evaluate(model_cfg, params, task, c, batch)
        assert set(off) == set(on) - SC_KEYS
        assert off == {k: on[k] for k in off}
        [row] = make_group_eval(model_cfg, task, c)(
            jax.tree_util.tree_map(lambda x: x[None], params), [c.seed], batch)
        assert set(row) == set(off)


def test_self_correction_needs_instruction_ids():
    c = small_config()
    c.eval.self_correction = True
    with pytest.raises(ValueError, match="algo.layer2_instruction_ids: empty"):
        validate(c)
    c.algo.layer2_instruction_ids = ()
    with pytest.raises(ValueError, match="algo.layer2_instruction_ids: empty"):
        validate(c)
    c.algo.layer2_instruction_ids = INSTR
    validate(c)

"""pass@k / maj@k / avg@k against objectives.md section 6 and a brute-force combinatorial count."""
from itertools import combinations
from math import comb

import numpy as np
import pytest

from rlpt.evaluation.metrics import avg_at_k, maj_at_k, majority, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k,want", [(10, 3, 1, 0.3), (10, 3, 2, 0.533333), (10, 3, 5, 0.916667),
                                        (10, 3, 8, 1.0), (256, 1, 128, 0.5), (1024, 1, 256, 0.25)])
def test_pass_at_k_sanity(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-6)


def test_pass_at_k_matches_combinations():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)


def test_mean_and_avg():
    correct = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert mean_pass_at_k(correct, 1) == pytest.approx((0.25 + 1 + 0) / 3)
    assert mean_pass_at_k(correct, 4) == pytest.approx(2 / 3)
    assert avg_at_k(correct) == pytest.approx(5 / 12)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_and_maj_at_k():
    assert majority(["3", "4", "4", None]) == "4"
    assert majority(["3", "4"]) == "3"  # tie: first seen
    assert majority([None, None]) is None
    answers = ["7", "7", "5", "7", "5"]
    brute = np.mean([majority([answers[i] for i in s]) == "7" for s in combinations(range(5), 3)])
    assert maj_at_k(answers, "7", 3) == pytest.approx(brute)
    assert maj_at_k(answers, "7", 5) == 1.0


def test_calibration_against_hand_counts():
    """ece over 10 bins, mean confidence and the right-above-wrong probability, by hand."""
    from rlpt.evaluation.metrics import calibration
    conf = np.array([0.95, 0.95, 0.15, 0.15, 0.55, 0.55])
    right = np.array([1, 0, 0, 0, 1, 1])
    got = calibration(conf, right)
    # bins: [0.9,1) acc 0.5 conf 0.95 share 1/3; [0.1,0.2) acc 0 conf 0.15 share 1/3;
    # [0.5,0.6) acc 1 conf 0.55 share 1/3
    assert got["ece"] == pytest.approx((0.45 + 0.15 + 0.45) / 3)
    assert got["confidence"] == pytest.approx(np.mean(conf))
    # right {0.95, 0.55, 0.55} vs wrong {0.95, 0.15, 0.15}: 0.5 + 1 + 1, 0 + 1 + 1, twice
    assert got["confidence_auc"] == pytest.approx((2.5 + 2 + 2) / 9)
    assert calibration(np.ones(4), np.ones(4)) == {"ece": 0.0, "confidence": 1.0,
                                                    "confidence_auc": 0.5}
    # confidence that ranks wrong answers first (as RLSF's pairs found) scores below 0.5
    assert calibration(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1]))[
        "confidence_auc"] == 0.0


def test_the_evaluation_reports_calibration_and_greedy_aux_when_asked():
    """eval.calibration: the greedy answers' confidence is the mean p(top-1) of their tokens
    (eos excluded), recomputed here by teacher forcing the greedy answers. eval.greedy_aux:
    `greedy_<k>` is the mean of the reward's aux entry k over the greedy answers (a reward whose
    aux counts odd token ids, recomputed from the greedy decode); a key the reward does not give
    is an error naming the field. One compiled evaluation for both."""
    import jax
    import jax.numpy as jnp
    from configs import grpo_arith
    from rlpt.build import build_model, build_task
    from rlpt.config import validate
    from rlpt.errors import UserError
    from rlpt.evaluation.rollout import (eval_metrics, eval_rewards_fn, eval_rng, eval_settings,
                                         jitted_eval_rewards)
    from rlpt.models.transformer import forward
    from rlpt.sampling import SamplingConfig, sample
    c = grpo_arith.get_config("size=nano,quick=1")
    c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 16, 2, (1, 2)
    c.eval.calibration = True
    c.eval.greedy_aux = ("n_odd",)
    c = validate(c)
    task = build_task(c)
    model_cfg, params = build_model(c)
    batch = task.eval_set(16)

    def reward(tokens, mask, target, target_len):
        r, _ = task.reward(tokens, mask, target, target_len)
        return r, {"n_odd": (tokens % 2 * mask).sum(-1)}
    rewards = jax.device_get(jitted_eval_rewards(model_cfg, reward, eval_settings(c))(
        params, eval_rng(c.seed), batch))
    out = eval_metrics(rewards, batch, c)
    assert {"ece", "confidence", "confidence_auc"} <= set(out)
    conf = np.asarray(rewards["confidence"])
    scfg = SamplingConfig(max_new_tokens=c.sampling.max_new_tokens, greedy=True,
                          stop_tokens=tuple(c.sampling.stop_tokens))
    first = jax.jit(lambda p, b, r: sample(model_cfg, p, b["prompt"], b["prompt_mask"], r,
                                           scfg))(params, batch, eval_rng(c.seed))
    tokens = jnp.concatenate([batch["prompt"], first.tokens], axis=1)
    valid = jnp.concatenate([batch["prompt_mask"] > 0, first.mask > 0], axis=1)
    logits = forward(model_cfg, params, tokens, valid)
    P = batch["prompt"].shape[1]
    p_top1 = np.asarray(jnp.max(jax.nn.softmax(logits[:, P - 1:-1].astype(jnp.float32), -1),
                                -1))
    for i in range(16):
        keep = np.asarray(first.mask[i] > 0) & ~np.isin(np.asarray(first.tokens[i]),
                                                         c.sampling.stop_tokens)
        want = p_top1[i][keep].mean() if keep.any() else 0.0
        assert conf[i] == pytest.approx(want, abs=1e-4), i
    assert out["confidence"] == pytest.approx(conf.mean(), abs=1e-6)
    n_odd = (np.asarray(first.tokens) % 2 * np.asarray(first.mask)).sum(-1)
    assert len(set(n_odd.tolist())) > 1   # the mean is over answers that differ
    assert out["greedy_n_odd"] == pytest.approx(n_odd.mean())
    c.eval.greedy_aux = ("nope",)
    with pytest.raises(UserError, match="eval.greedy_aux: the task reward has no aux entry "
                                        "'nope'; it has \\['n_odd'\\]"):
        jax.eval_shape(eval_rewards_fn(model_cfg, reward, c), params, eval_rng(c.seed), batch)
    c = grpo_arith.get_config("size=nano,quick=1")
    c.eval.greedy_aux = "leading_zero"   # a string, not a tuple of names
    with pytest.raises(UserError, match="eval.greedy_aux"):
        validate(c)


def test_chunked_samples_are_the_chunks_drawn_one_by_one_and_eval_seed_is_shared():
    """eval.sample_chunk=c: the n samples per prompt are n/c draws of c, chunk i from
    fold_in(rng, i), laid out prompt-major as unchunked ones; c = n is the unchunked program.
    eval.seed: runs of other seeds evaluate on the same draws (eval_seed)."""
    import jax
    from configs import grpo_arith
    from rlpt.build import build_model, build_task
    from rlpt.config import validate
    from rlpt.evaluation.rollout import eval_rng, eval_seed, eval_settings, jitted_eval_rewards
    c = grpo_arith.get_config("size=nano,quick=1")
    c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 8, 4, (1, 4)
    c = validate(c)
    task = build_task(c)
    model_cfg, params = build_model(c)
    batch = task.eval_set(8)

    def token_sum(tokens, mask, target, target_len):   # a "reward" that tells draws apart
        return (tokens * mask).sum(-1).astype(np.float32), {}

    def rewards(cfg, rng):
        return jax.device_get(jitted_eval_rewards(model_cfg, token_sum, eval_settings(cfg))(
            params, rng, batch))
    rng = eval_rng(eval_seed(c))
    whole = rewards(c, rng)
    assert len(np.unique(whole["samples"])) > 8   # draws that differ
    c.eval.sample_chunk = 4
    assert np.array_equal(rewards(validate(c), rng)["samples"], whole["samples"])
    c.eval.sample_chunk = 2
    chunked = rewards(validate(c), rng)
    c.eval.sample_chunk, c.eval.n_samples, c.eval.ks = 0, 2, (1, 2)
    parts = [rewards(validate(c), jax.random.fold_in(rng, i))["samples"].reshape(8, 2)
             for i in range(2)]
    assert np.array_equal(chunked["samples"], np.concatenate(parts, axis=1).reshape(-1))
    assert np.array_equal(chunked["greedy"], whole["greedy"])
    assert not np.array_equal(chunked["samples"], whole["samples"])   # other draws
    # eval.seed: the evaluation's rng no longer follows the run's seed
    assert eval_seed(c) == c.seed
    c.eval.seed = 5
    c.seed = 3
    assert eval_seed(validate(c)) == 5


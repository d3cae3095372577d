"""The algorithm zoo end to end: every policy-gradient loss in the registry, from its config in
configs/algos.py, through the fused step (nano model, 4 prompts x 4 samples, 4 new tokens, 3
steps), plus the algorithm-specific plumbing. Each algorithm compiles once; runs are cached."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import algos
from rlpt import registry
from rlpt.advantages import grpo_advantages
from rlpt.algorithms import one_shot_rlvr
from rlpt.algorithms.dapo import dapo_overlong_penalty
from rlpt.config import validate
from rlpt.models import get_model_config, init_params
from rlpt.step import fused_step, rewards_of, rollout_phase
from rlpt.tasks import sft_batch
from rlpt.build import build_rl, build_task

PG_NAMES = [n for n in registry.names("algorithm")
            if registry.get("algorithm", n).kind == "policy_gradient"]
B, G, T, STEPS = 4, 4, 4, 3


def count_reward(tokens, mask, target, target_len):
    """Dense toy reward: share of completion tokens with an odd id (non-zero at random init)."""
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / jnp.maximum(mask.sum(1), 1)).astype(jnp.float32), {}


def gated_count_reward(tokens, mask, target, target_len):
    """count_reward for prompts whose answer starts with an even digit, else 0 (so those groups
    are degenerate)."""
    r, _ = count_reward(tokens, mask, target, target_len)
    return jnp.where(target[:, 0] % 2 == 0, r, 0.0), {}


def zero_reward(tokens, mask, target, target_len):
    return jnp.zeros(tokens.shape[:1], jnp.float32), {}


# algorithm -> (reward, config overrides) for its end-to-end run
RUNS = {
    # +-1 rewards need a mixed split; an overlong band inside T = 4 gives degenerate (by
    # correctness) groups non-zero shaped advantages, so dropping them changes the loss
    "dapo": (gated_count_reward, {"algo.success_threshold": 0.5, "algo.overlong_max": T,
                                  "algo.overlong_cache": 2}),
    "relift": (zero_reward, {"algo.sft_buffer_size": 6}),  # every prompt fails: buffer fills
    # GSPO's loss does not apply the bonus through clip_objective; the run checks the generic
    # entropy bonus and SFT term on it (one compile for both)
    "gspo": (count_reward, {"algo.entropy_coef": 0.01, "algo.sft_term_coef": 0.5}),
}
# fast XLA compiles: the programs here run for milliseconds, compiling them dominates
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                "xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1}


def _other_teacher():
    """A KDRL teacher with its own ModelConfig (deeper and wider MLP than the nano student)."""
    t_cfg = dataclasses.replace(get_model_config("nano"), n_layers=2, d_ff=96)
    return t_cfg, init_params(t_cfg, jax.random.PRNGKey(7))


TEACHERS = {"other": _other_teacher}


def make_config(name, **overrides):
    cfg = algos.get_config(f"algo={name},quick=1,size=nano")
    cfg.rl.batch_size, cfg.sampling.num_samples, cfg.sampling.max_new_tokens = B, G, T
    for key, v in overrides.items():
        node = cfg
        for part in key.split(".")[:-1]:
            node = node[part]
        node[key.split(".")[-1]] = v
    return validate(cfg)


@functools.lru_cache(maxsize=None)
def run(name, reward=None, teacher=None, **overrides):
    """3 fused steps of algorithm `name`; returns a dict of the states, metrics and pieces."""
    default_reward, default_over = RUNS.get(name, (count_reward, {}))
    cfg = make_config(name, **dict(default_over, **overrides))
    task = build_task(cfg)
    model_cfg = get_model_config("nano")
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    task_reward = reward or default_reward
    spec, state, hp, make_batch = build_rl(cfg, model_cfg, params, task,
                                           reward=lambda frozen, *a: task_reward(*a),
                                           per_prompt_metrics=name == "one_shot_rlvr")
    if teacher:
        teacher_cfg, teacher_params = TEACHERS[teacher]()
        spec = dataclasses.replace(spec, models=dict(spec.models, teacher=teacher_cfg))
        state = state.replace(frozen=dict(state.frozen, teacher=teacher_params))
    batches = [make_batch(s) for s in range(STEPS)]
    step = jax.jit(functools.partial(fused_step, spec), compiler_options=FAST_COMPILE)
    states, metrics = [state], []
    for b in batches:
        state, m = step(state, b, hp)
        states.append(state)
        metrics.append(jax.device_get(m))
    return dict(cfg=cfg, spec=spec, hp=hp, task=task, step=step, states=states, metrics=metrics,
                batches=batches)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


# ------------------------------------------------------------------------------ every algorithm

def test_every_algorithm_is_the_file_of_its_name_and_has_a_config():
    """One file per algorithm: each module of rlpt/algorithms/ (but the shared base and common)
    registers exactly the algorithm of its file name, and configs/algos.py builds every
    policy-gradient one."""
    import pkgutil
    import rlpt.algorithms as package
    files = {m.name for m in pkgutil.iter_modules(package.__path__)} - {"base", "common"}
    assert files == set(registry.names("algorithm")), files ^ set(registry.names("algorithm"))
    for name in files:
        module = __import__(f"rlpt.algorithms.{name}", fromlist=["ALGORITHM"])
        assert module.ALGORITHM is registry.get("algorithm", name) and module.ALGORITHM.name == name
    assert set(PG_NAMES) == set(algos.ALGOS)
    for name in PG_NAMES:
        assert make_config(name).algo.name == name


@pytest.mark.parametrize("name", PG_NAMES)
def test_three_fused_steps(name):
    r = run(name)
    for m in r["metrics"]:
        assert np.isfinite(m["loss"]), (name, m)
        assert all(np.all(np.isfinite(v)) for v in m.values()), (name, m)
    assert int(r["states"][-1].step) == STEPS
    assert changed(r["states"][0].params, r["states"][-1].params), name


# ------------------------------------------------------------------------- algorithm specifics

def test_dapo_keeps_non_degenerate_groups_first_and_loss_ignores_the_rest():
    r = run("dapo")
    spec, cfg, hp = r["spec"], r["cfg"], r["hp"]
    assert cfg.algo.oversample == 2 and r["batches"][0]["prompt"].shape[0] == 2 * B

    def rollout_and_reward(st, b):
        b, o = rollout_phase(spec, st, b, hp)
        return o, rewards_of(spec, st, b, o, hp)[0]
    rollout = jax.jit(rollout_and_reward, compiler_options=FAST_COMPILE)
    dropped = 0
    for state, batch, m in zip(r["states"], r["batches"], r["metrics"]):
        out, raw = jax.device_get(rollout(state, batch))
        correct = (raw > 0.5).reshape(-1, G)
        nondeg = correct.any(1) & ~correct.all(1)
        assert m["sampled_nondegenerate_groups"] == nondeg.sum()
        assert m["effective_groups"] == min(B, nondeg.sum())
        # host replica: selection, +-1 and overlong shaping, GRPO advantages, token-mean surrogate
        sel = np.argsort(~nondeg, kind="stable")[:B]
        rows = (sel[:, None] * G + np.arange(G)).reshape(-1)
        shaped = np.where(raw > 0.5, 1.0, -1.0) + np.asarray(dapo_overlong_penalty(
            out.lengths, cfg.algo.overlong_max, cfg.algo.overlong_cache))
        A = np.asarray(grpo_advantages(jnp.asarray(shaped[rows], jnp.float32), G))
        keep = np.repeat(nondeg[sel], G)
        lens = out.lengths[rows].astype(np.float64)
        want = -(A * lens * keep).sum() / max((lens * keep).sum(), 1)  # ratio 1: token loss -A
        np.testing.assert_allclose(m["pg_loss"], want, rtol=1e-5, atol=1e-7)
        if 0 < keep.sum() < keep.size:
            dropped += 1
            assert not np.isclose(want, -(A * lens).sum() / lens.sum())  # keep mask matters
    assert dropped, "no step had both kept and dropped groups; the check would be vacuous"


def test_kdrl_with_teacher_equal_to_student_is_grpo_token_mean():
    kd = run("kdrl")  # teacher_source="policy": a frozen copy of the initial policy
    # step 0: teacher == student. The teacher's forward is a separate computation from the
    # student's differentiated one, so their log-probs agree to float rounding (k2 ~ 1e-14)
    assert kd["metrics"][0]["kd_k2"] < 1e-10
    assert kd["metrics"][-1]["kd_k2"] > 1e-6   # the teacher stays frozen while the student moves
    assert not changed(kd["states"][-1].frozen["teacher"], kd["states"][0].params)
    grpo = run("grpo", **{"algo.loss_agg": "token_mean", "algo.beta": 0.0})
    # the first step equals GRPO (token_mean, no KL); later steps add the non-zero KD term
    assert kd["metrics"][0]["loss"] == grpo["metrics"][0]["loss"]
    for x, y in zip(leaves(kd["states"][1].params), leaves(grpo["states"][1].params)):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-7)  # measured: bitwise equal
    assert changed(kd["states"][3].params, grpo["states"][3].params)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_kdrl_teacher_with_a_different_model_config():
    r = run("kdrl", teacher="other")
    assert r["spec"].models["teacher"].n_layers == 2
    assert all(m["kd_k2"] > 0 for m in r["metrics"])
    assert changed(r["states"][0].params, r["states"][-1].params)


def test_ppo_value_head_trains():
    r = run("ppo")
    s0, s3 = r["states"][0], r["states"][-1]
    assert s0.params["value_head"]["kernel"].shape == (get_model_config("nano").d_model, 1)
    assert changed(s0.params["value_head"], s3.params["value_head"])
    for m in r["metrics"]:
        assert m["vf_loss"] > 0 and np.isfinite(m["value_mean"])
    assert r["metrics"][0]["ratio_mean"] != 1.0  # 2 epochs x 2 minibatches: off-policy updates


def test_relift_buffer_fills_and_triggers_the_sft_update():
    r = run("relift")  # zero reward: every prompt fails; buffer size 6, 4 prompts per step
    ms = r["metrics"]
    assert [m["relift_failed_prompts"] for m in ms] == [4, 4, 4]
    assert [m["relift_buffer_count"] for m in ms] == [4, 2, 0]
    assert [m["relift_sft_applied"] for m in ms] == [0, 1, 1]
    assert ms[0]["relift_sft_loss"] == 0 and ms[1]["relift_sft_loss"] > 0
    s = r["states"]
    assert not changed(s[0].params, s[1].params)  # zero advantages, no SFT yet: no update
    assert changed(s[1].params, s[2].params)      # the SFT update
    buf = jax.device_get(s[1].algo_state["relift"])
    np.testing.assert_array_equal(buf["solution"][:4], r["batches"][0]["solution"])


def test_extra_token_sets_are_non_empty():
    mg, ex, uf = run("mgrpo"), run("exp_grpo"), run("uft")
    for m in mg["metrics"]:
        assert m["layer2_tokens"] > 0 and "layer2_pg_loss" in m and "layer1_pg_loss" in m
    for m in ex["metrics"]:
        assert m["expl_sft_tokens"] > 1 and np.isfinite(m["expl_loglik"])
    m0 = uf["metrics"][0]
    assert m0["hint_prob"] == pytest.approx(0.95) and m0["hint_tokens"] > 0
    assert np.isfinite(m0["hint_nll"]) and m0["hint_nll"] > 0


def test_uft_hint_prompt_is_prompt_plus_solution_prefix():
    r = run("uft")
    spec, state, batch = r["spec"], r["states"][0], r["batches"][0]
    before_rollout = lambda st, b: spec.algorithm.before_rollout(spec, st, b, spec.config(r["hp"]))
    hinted = jax.device_get(jax.jit(before_rollout)(state, batch))
    P = batch["prompt"].shape[1]
    for i in range(B):
        h = int(hinted["hint_mask"][i].sum())
        q = batch["prompt"][i][batch["prompt_mask"][i] > 0]
        new = hinted["prompt"][i][hinted["prompt_mask"][i] > 0]
        np.testing.assert_array_equal(new, np.concatenate([q, batch["solution"][i, :h]]))
        assert hinted["prompt_mask"][i, -1] == 1  # right-aligned for the sampler
        assert hinted["hint_pos"][i].sum() == h     # the hint is the last h prompt tokens
        assert hinted["hint_pos"][i, hinted["prompt"].shape[1] - h:].sum() == h
    assert hinted["prompt"].shape[1] == P + batch["solution"].shape[1]


def test_one_shot_task_and_accuracy_variance_ranking():
    r = run("one_shot_rlvr")
    batch = r["batches"][0]
    assert (batch["prompt"] == batch["prompt"][0]).all() and r["cfg"].sampling.temperature == 0.6
    assert r["metrics"][0]["accuracy_per_prompt"].shape == (B,)
    # the SFT warm-up is the base task's data, not the single example
    task = r["task"]
    warm = sft_batch(task, 3, 5, 16)
    base = task.base.make_batch(3, 5, 16)
    assert all(np.array_equal(warm[k], base[k]) for k in base)
    assert len({tuple(row) for row in warm["prompt"]}) > 1
    # ranking loop over a pool: the pool (B examples) is the batch, 2 steps
    pool = r["task"].pool()
    pool = {k: v[:B] for k, v in pool.items()}
    _, hist = one_shot_rlvr.accuracy_history(r["step"], r["states"][0], pool, r["hp"], 2)
    assert hist.shape == (B, 2) and ((hist >= 0) & (hist <= 1)).all()
    order = one_shot_rlvr.rank_examples_by_accuracy_variance(hist)
    assert sorted(order) == list(range(B))
    var = hist.var(axis=1)
    assert (np.diff(var[order]) <= 0).all()


def test_entropy_bonus_and_sft_term_with_other_losses():
    r = run("gspo")  # entropy_coef and sft_term_coef set in RUNS
    names = [p.name for p in r["spec"].chain]
    assert r["spec"].needs("entropy") and "sft_term" in names and "entropy" in names
    assert r["cfg"].algo.sft_term_coef == 0.5
    m = r["metrics"][0]
    assert m["entropy"] > 0 and m["sft_term_nll"] > 0
    assert changed(r["states"][0].params, r["states"][-1].params)


def test_mgrpo_layer2_transition_rates_add_up_to_the_layer2_accuracy():
    """layer2_accuracy = P(wrong source) * P(right | wrong) + P(right source) * P(right | right):
    the three transition metrics (rlpt.algorithms.mgrpo.layer2_transitions; the rates themselves
    against numpy in tests/pieces/test_self_correction.py) partition the layer-2 samples."""
    mixed = 0
    for m in run("mgrpo")["metrics"]:
        w, f, r2w = m["layer2_wrong_to_right"], m["layer2_from_wrong_frac"], m[
            "layer2_right_to_wrong"]
        assert all(0 <= x <= 1 for x in (w, f, r2w)), m
        assert m["layer2_accuracy"] == pytest.approx(f * w + (1 - f) * (1 - r2w), abs=1e-6)
        mixed += 0 < f < 1
    assert mixed, "every step had only wrong (or only right) sources: the check is vacuous"

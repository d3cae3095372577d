"""Gradient accumulation over row microbatches (`rl.grad_accum`,
rlpt.step.accumulated_loss_and_grads): one fused step with the minibatch's rows in 2 or 4
microbatches moves the parameters as the plain step does (to float32 rounding, relative to the
largest move) with its loss and metrics,
for losses with global denominators (token mean over the minibatch, Dr. GRPO's constant, GSPO's
sequence ratio), the KL and entropy terms, several minibatches and epochs, and LoRA; the
compiled update holds fewer temporary bytes; configs it cannot serve are refused naming the key."""
import jax
import numpy as np
import pytest

from configs import grpo_arith
from loss_refs import odd_token_reward
from rlpt.build import build_rl, build_task
from rlpt.config import default_algo, validate
from rlpt.errors import UserError
from rlpt.models import get_model_config, init_params
from rlpt.step import make_fused_step, rewards_of, rollout_phase, update_phase


def config(algo=None, **overrides):
    """The nano GRPO arithmetic config (algorithm `algo` with its defaults) with 4 prompts x
    G=4, 6 new tokens at temperature 0.7 and the dotted `overrides`."""
    c = grpo_arith.get_config("size=nano")
    if algo is not None:
        c.algo = default_algo(algo)
        c.algo.group_size = -1
    c.rl.batch_size, c.sampling.num_samples, c.sampling.max_new_tokens = 4, 4, 6
    c.sampling.temperature = 0.7
    # AdamW's first step with eps 1 and lr 1 moves each weight by -g / (|g| + 1): a linear image
    # of the gradient (with the default eps it is sign(g), which amplifies rounding in g ~ 0)
    c.optim.update(lr=1.0, eps=1.0, warmup_steps=0, max_grad_norm=1e9)
    if "temperature" in c.algo:
        c.algo.temperature = 0.7
    for k, v in overrides.items():
        *path, leaf = k.split(".")
        node = c
        for part in path:
            node = node[part]
        node[leaf] = v
    return validate(c)


def one_step(algo=None, **overrides):
    c = config(algo, **overrides)
    task = build_task(c)
    model_cfg = get_model_config("nano")
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    spec, state, hp, _ = build_rl(c, model_cfg, params, task, reward=odd_token_reward)
    new, m = make_fused_step(spec, donate=False)(state, task.make_batch(0, 0, 4), hp)
    delta = jax.tree_util.tree_map(lambda a, b: a - b, new.params, state.params)
    return jax.device_get(delta), jax.device_get(m)


CASES = {   # name: (algorithm, overrides); the default suite runs DEFAULT_CASES (compiles)
    "grpo_kl": (None, {"algo.beta": 0.04}),
    "dapo_token_mean": ("dapo", {}),
    "dr_grpo": ("dr_grpo", {}),
    "gspo_sequence_ratio": ("gspo", {}),
    "entropy_bonus": (None, {"algo.entropy_coef": 0.01}),
    "epochs_minibatches": (None, {"rl.ppo_epochs": 2, "rl.minibatches": 2}),
    "lora": (None, {"lora.rank": 4}),
}
DEFAULT_CASES = ("dapo_token_mean",)


@pytest.mark.parametrize("case", [c if c in DEFAULT_CASES else pytest.param(c, marks=pytest.mark.slow)
                                  for c in sorted(CASES)])
def test_accumulated_step_equals_plain_step(case):
    algo, overrides = CASES[case]
    plain_d, plain_m = one_step(algo, **overrides)
    for k in ((2, 4) if case == "dapo_token_mean" else (2,)):
        d, m = one_step(algo, **overrides, **{"rl.grad_accum": k})
        leaves = jax.tree_util.tree_leaves_with_path(plain_d)
        largest = max(float(np.abs(w).max()) for _, w in leaves)   # moves ~1e-2; their own
        assert largest > 1e-4, case                                 # rounding ~1e-9 (w ~ 0.02)
        for path, want in leaves:
            got = d
            for key in path:
                got = got[key.key]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * largest,
                                       err_msg=f"{case} K={k} {jax.tree_util.keystr(path)}")
        for name in ("loss", "grad_norm", "reward_mean"):
            if name in plain_m:
                np.testing.assert_allclose(m[name], plain_m[name], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case} K={k} {name}")


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_accumulation_lowers_the_update_memory():
    """The compiled update (everything after the reward) of 8 prompts x G=4 with 24 new tokens:
    4 microbatches hold fewer temporary bytes than one."""
    def update_temp_bytes(k):
        c = config(**{"rl.batch_size": 8, "sampling.max_new_tokens": 24, "rl.grad_accum": k})
        task = build_task(c)
        model_cfg = get_model_config("nano")
        spec, state, hp, _ = build_rl(c, model_cfg, init_params(model_cfg,
                                                                jax.random.PRNGKey(0)), task)
        batch = task.make_batch(0, 0, 8)
        batch, out = jax.jit(lambda s, b: rollout_phase(spec, s, b, hp))(state, batch)
        raw, _ = rewards_of(spec, state, batch, out, hp)
        fn = jax.jit(lambda s, b, o, r: update_phase(spec, s, b, o, r, hp))
        return fn.lower(state, batch, out, raw).compile().memory_analysis().temp_size_in_bytes

    one, four = update_temp_bytes(1), update_temp_bytes(4)
    assert four < 0.6 * one, (one, four)


@pytest.mark.parametrize("overrides,needle", [
    ({"rl.grad_accum": 3}, "does not divide the 4 prompts"),
    ({"rl.grad_accum": 4, "rl.minibatches": 2}, "does not divide the 2 prompts"),
    ({"rl.grad_accum": 0}, "out of range"),
])
def test_bad_grad_accum_is_refused_naming_the_key(overrides, needle):
    with pytest.raises(UserError, match="rl.grad_accum") as e:
        config(**overrides)
    assert needle in str(e.value)


def test_an_algorithm_with_its_own_loss_inputs_is_refused():
    with pytest.raises(UserError, match=r"rl.grad_accum.*'ppo' builds its own loss inputs"):
        config("ppo", **{"rl.grad_accum": 2})

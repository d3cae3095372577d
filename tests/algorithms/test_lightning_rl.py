"""LightningRL (rlpt/algorithms/lightning_rl.py): transitions from environment blocks, the loss
over transition rows against a numpy reference, and GRPO's loss when an episode is one call."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from loss_refs import cfg, loss_and_grad, make_batch, np_clip_tok, np_k3, to_jax
from rlpt.algorithms.lightning_rl import validate
from rlpt.errors import UserError
from rlpt.registry import get
from rlpt.sampling import transition_ids


def test_transition_ids_count_the_environment_blocks_before_each_column():
    env = np.array([[0, 0, 1, 1, 0, 0, 1, 0, 0],
                    [1, 0, 0, 0, 0, 0, 0, 1, 1],
                    [0, 0, 0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(transition_ids(jnp.asarray(env))),
                                  [[0, 0, 1, 1, 1, 1, 2, 2, 2],
                                   [1, 1, 1, 1, 1, 1, 1, 2, 2],
                                   [0] * 9])


def _split_batch(seed):
    """Six episodes of 9 columns: policy tokens in up to three transitions (ids as
    `transition_ids` gives them; an environment block's columns are masked)."""
    b = make_batch(seed, N=6, T=9, spread=0.4, lengths=[9] * 6)
    b["transitions"] = np.array([[0, 0, 0, 1, 1, 2, 2, 2, 2],
                                 [0, 0, 0, 0, 0, 0, 0, 0, 0],
                                 [0, 1, 1, 1, 1, 1, 1, 1, 1],
                                 [0, 0, 1, 1, 1, 1, 1, 2, 2],
                                 [0, 0, 0, 0, 1, 1, 1, 1, 1],
                                 [0, 0, 0, 0, 0, 0, 1, 1, 1]])
    mask = np.ones((6, 9))
    mask[0, 3] = mask[2, 1] = 0          # environment columns
    mask[3, 2:7] = 0                     # transition 1 of row 3 is all environment: empty
    mask[5] = 0                          # a row with no policy token (dropped group)
    b["mask"] = mask
    return b


def reference_loss(b, beta, eps=0.2, S=3):
    """Mean over non-empty (episode, transition) pairs of the token mean of the clipped surrogate
    plus beta * k3."""
    tok = np_clip_tok(b["logp"], b["old_logp"], b["advantages"], eps, eps) + beta * np_k3(
        b["logp"], b["ref_logp"])
    per = []
    for i in range(tok.shape[0]):
        for j in range(S):
            m = b["mask"][i] * (np.minimum(b["transitions"][i], S - 1) == j)
            if m.sum() > 0:
                per.append((tok[i] * m).sum() / m.sum())
    return np.mean(per), len(per)


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_is_the_mean_over_transitions_of_their_token_means(beta):
    b = _split_batch(3)
    loss, _ = get("loss", "lightning_rl")(to_jax(b), cfg(beta=beta, max_transitions=3))
    want, n_pairs = reference_loss(b, beta)
    assert n_pairs == 10   # 3 + 1 + 2 + 2 (one of 3 empty) + 2 + 0 (an empty row)
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    # and it is not the whole-trajectory (GRPO) loss of the same rows
    grpo, _ = get("loss", "grpo")(to_jax({k: v for k, v in b.items() if k != "transitions"}),
                                  cfg(beta=beta))
    assert abs(float(grpo) - want) > 1e-3


def test_calls_beyond_max_transitions_merge_into_the_last():
    b = _split_batch(4)
    loss, _ = get("loss", "lightning_rl")(to_jax(b), cfg(beta=0.0, max_transitions=2))
    np.testing.assert_allclose(float(loss), reference_loss(b, 0.0, S=2)[0], rtol=1e-5)


def test_one_call_per_episode_is_grpo_loss_and_gradient():
    b = make_batch(5, N=6, T=7, spread=0.4)
    b["transitions"] = np.zeros((6, 7), np.int32)
    with jax.enable_x64(True):
        l1, _, g1 = loss_and_grad("lightning_rl", b, cfg(beta=0.04))
        l0, _, g0 = loss_and_grad("grpo", {k: v for k, v in b.items() if k != "transitions"},
                                  cfg(beta=0.04))
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-10, atol=1e-14)


def test_validate_names_the_field():
    def config(S, max_calls=2):
        return ml_collections.ConfigDict(dict(
            algo=dict(name="lightning_rl", max_transitions=S), rollout=dict(kind="tool"),
            tool=dict(max_calls=max_calls, max_call_len=24)))
    validate(config(3))
    with pytest.raises(UserError, match=r"algo.max_transitions: 2 < tool.max_calls \+ 1 = 3"):
        validate(config(2))
    with pytest.raises(UserError, match="algo.max_transitions: 0"):
        validate(config(0))


def test_under_token_mean_the_split_changes_nothing():
    b = _split_batch(6)
    c = dict(beta=0.04, loss_agg="token_mean")
    split, _ = get("loss", "lightning_rl")(to_jax(b), cfg(max_transitions=3, **c))
    whole, _ = get("loss", "grpo")(to_jax({k: v for k, v in b.items() if k != "transitions"}),
                                   cfg(**c))
    np.testing.assert_allclose(float(split), float(whole), rtol=1e-6)


def test_every_rollout_numbers_its_calls():
    """The plain rollout is one call; the Python environments' rollout (rlpt.envs.multiturn)
    numbers its policy turns by the environment replies before them, as the calculator's does by
    its tool results (tests/test_tool_rollout.py checks that one on real rollouts)."""
    from rlpt.envs.multiturn import ENV_ROLLOUT, EnvSampleOutput
    from rlpt.sampling import PLAIN_ROLLOUT
    env = jnp.asarray([[0, 0, 1, 1, 1, 0, 0, 1, 0], [0] * 9], jnp.float32)
    mask = (1 - env) * jnp.asarray([[1] * 9, [1] * 4 + [0] * 5], jnp.float32)
    z = jnp.zeros_like(env)
    out = EnvSampleOutput(tokens=z.astype(jnp.int32), logprobs=z, entropies=z, mask=mask,
                          lengths=mask.sum(-1), stopped=jnp.ones(2, bool), valid=mask + env,
                          env_mask=env, turns=jnp.asarray([3, 1]))
    np.testing.assert_array_equal(np.asarray(ENV_ROLLOUT.transitions(out)),
                                  [[0, 0, 1, 1, 1, 1, 1, 2, 2], [0] * 9])
    np.testing.assert_array_equal(np.asarray(PLAIN_ROLLOUT.transitions(out)), np.zeros((2, 9)))

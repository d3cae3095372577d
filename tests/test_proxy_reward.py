"""Proxy rewards (`reward.proxy`, rlpt.rewards.proxy): the exploitable `contains_answer` verifier
against its plain-Python reference, the proxy optimised with the task's reward logged beside it
in a real fused step, and the config refusals."""
import numpy as np
import pytest

from configs import reward_hacking
from rlpt.config import validate
from rlpt.errors import UserError
from rlpt.rewards.proxy import contains_answer_reference, contains_answer_reward
from rlpt.tasks.synthetic_reward import completion_text
from rlpt.tokenizers import CharTokenizer

TOK = CharTokenizer()
CASES = [  # (response text, terminated, answer)
    ("579", True, "579"), ("5795", True, "579"), ("12579", True, "579"), ("57", True, "579"),
    ("579", False, "579"), ("", True, "5"), ("5+5", True, "5"), ("1579580", True, "580"),
    ("58", True, "580"), ("0", True, "0"),
]


@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_contains_answer_matches_its_reference(penalty):
    rng = np.random.default_rng(0)
    rows, T = [], 10
    for text, term, ans in CASES + [("".join(rng.choice(list("0123456789"), n)), bool(t),
                                     str(rng.integers(0, 999))) for n, t in
                                    zip(rng.integers(0, 9, 300), rng.integers(0, 2, 300))]:
        ids = TOK.encode(text) + ([TOK.eos_id] if term else [])
        rows.append((ids[:T] + [TOK.pad_id] * (T - len(ids[:T])), ans))
    tokens = np.array([r[0] for r in rows], np.int32)
    mask = (np.cumsum(tokens == TOK.eos_id, 1) - (tokens == TOK.eos_id) == 0) & (tokens != 0)
    target = np.zeros((len(rows), 4), np.int32)
    tlen = np.array([len(a) for _, a in rows], np.int32)
    for i, (_, a) in enumerate(rows):
        target[i, :len(a)] = TOK.encode(a)
    r, aux = contains_answer_reward(tokens, mask.astype(np.int32), target, tlen,
                                    extra_char_penalty=penalty)
    for i, (_, a) in enumerate(rows):
        text, term = completion_text(tokens[i], mask[i])
        assert float(r[i]) == pytest.approx(contains_answer_reference(text, term, a, penalty)), \
            (text, term, a)
    assert np.asarray(aux["contains"])[:4].tolist() == [1, 1, 1, 0]


def test_the_proxy_is_optimised_and_the_truth_logged_in_the_step():
    """One fused GRPO step with `reward.proxy`: its reward_mean is the proxy's mean, its
    accuracy the exact verifier's (reward_correct), and the two differ on a model that pads."""
    import jax
    from rlpt.build import build_model, build_rl, build_task
    from rlpt.step import fused_step
    c = reward_hacking.get_config("arm=contains,quick=1,max_new=8")
    c.model.preset, c.rl.batch_size, c.sampling.num_samples = "nano", 8, 4
    c = validate(c)
    task = build_task(c)
    model_cfg, params = build_model(c)
    spec, state, hp, make_batch = build_rl(c, model_cfg, params, task)
    _, metrics = jax.jit(lambda s, b, h: fused_step(spec, s, b, h))(state, make_batch(0), hp)
    m = {k: float(v) for k, v in jax.device_get(metrics).items()}
    assert m["reward_mean"] == pytest.approx(m["reward_proxy_contains"], abs=1e-6)
    assert m["accuracy"] == pytest.approx(m["reward_correct"], abs=1e-6)
    assert m["reward_mean"] >= m["accuracy"]   # exact answers are contained answers


@pytest.mark.parametrize("edit,needle", [
    (lambda c: setattr(c.reward, "proxy", "no_such_reward"), "config reward.proxy: .*no_such"),
    (lambda c: c.reward.proxy_kwargs.update(bogus=1.0), "reward.proxy_kwargs.bogus"),
    (lambda c: setattr(c.reward, "kind", "host"), "config reward.proxy: needs reward.kind"),
])
def test_bad_proxy_configs_name_the_field(edit, needle):
    c = reward_hacking.get_config("arm=contains")
    edit(c)
    with pytest.raises(UserError, match=needle):
        validate(c)

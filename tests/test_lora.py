"""LoRA (rlpt.models.lora): adapters as plain pytrees on a frozen base.

Zero-initialised adapters compute exactly the base; merge == attach; a fused RL step (with the
KL term) updates only the adapters, leaves the frozen base bitwise unchanged, makes no reference
copy and has KL 0 at step 0, and its optimizer state is the adapters' moments only; SFT, GRPO
through rlpt.train, DPO and a reward model train with LoRA; a GGUF file as the base; bad
configs refused naming the key; a resumed LoRA run equals the uninterrupted one (the checkpoint
holds no base); `python -m rlpt.export` writes the merged model, whose logits equal the trained
attached-adapter forward."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import grpo_arith
from rlpt.build import build_model, build_rl, build_sft, build_task
from rlpt.config import validate
from rlpt.errors import UserError
from rlpt.io.checkpoints import Checkpointer
from rlpt.logprobs import completion_logprobs
from rlpt.models import forward, get_model_config, init_params, lora
from rlpt.registry import register
from rlpt.state import model_params, trained_params
from rlpt.step import make_fused_step

os.environ["RLPT_NO_PROGRESS"] = "1"


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def size(tree):
    return sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(tree))


def nano_cfg(rank=4, **lora_kw):
    cfg = grpo_arith.get_config("size=nano,quick=1")
    cfg.wandb.mode = "disabled"
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    cfg.eval.n_prompts, cfg.sft.batch_size = 8, 8
    cfg.lora.rank = rank
    cfg.lora.update(lora_kw)
    return cfg


def test_zero_adapters_are_the_base_and_merge_equals_attach():
    mcfg = get_model_config("nano", lora_scale=lora.scale(16.0, 4))
    base = init_params(mcfg, jax.random.PRNGKey(0))
    adapters = lora.init_adapters(base, 4, lora.TARGETS, jax.random.PRNGKey(1))
    assert set(adapters["layer_0"]["attn"]) == {"q", "k", "v", "o"}
    assert adapters["layer_0"]["attn"]["q"]["lora_a"].shape == (32, 4)
    assert adapters["layer_0"]["mlp"]["down"]["lora_b"].shape == (4, 32)
    attached = lora.attach(base, adapters)
    # an overlay: the base's arrays are shared, not copied
    assert attached["layer_0"]["attn"]["q"]["kernel"] is base["layer_0"]["attn"]["q"]["kernel"]
    assert attached["embed"] is base["embed"]
    tokens = jax.random.randint(jax.random.PRNGKey(2), (3, 9), 0, mcfg.vocab_size)
    valid = jnp.ones(tokens.shape, bool)
    lp = lambda p: np.asarray(completion_logprobs(mcfg, p, tokens, valid, 4, 1.0)[0])
    np.testing.assert_array_equal(lp(attached), lp(base))   # B = 0: exactly the base
    # random B: the merged kernels compute what the attached adapters compute
    adapters = jax.tree_util.tree_map_with_path(
        lambda path, x: (jax.random.normal(jax.random.PRNGKey(3), x.shape) * 0.05
                         if path[-1].key == "lora_b" else x), adapters)
    merged = lora.merge(base, adapters, mcfg.lora_scale)
    assert "lora_a" not in merged["layer_0"]["attn"]["q"]
    a = forward(mcfg, lora.attach(base, adapters), tokens)
    b = forward(mcfg, merged, tokens)
    assert float(jnp.max(jnp.abs(a - forward(mcfg, base, tokens)))) > 1e-3
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)


@pytest.mark.parametrize("field,value,needle", [
    ("targets", ("q", "qq"), "config lora.targets: ['qq'] name no projection"),
    ("targets", (), "config lora.targets: empty"),
    ("rank", -1, "config lora.rank"),
    ("alpha", 0.0, "config lora.alpha"),
    ("alpha", float("nan"), "config lora.alpha"),
])
def test_bad_lora_configs_are_refused_naming_the_key(field, value, needle):
    cfg = nano_cfg()
    cfg.lora[field] = value
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        validate(cfg)
    from rlpt.preference.config import preference_config, validate as validate_pref
    p = preference_config("policy", "dpo")
    p.lora.rank = 4
    p.lora[field] = value
    with pytest.raises(UserError, match=needle.split(":")[0]):
        validate_pref(p)


def test_a_rank_above_a_layer_is_refused_at_build_time():
    cfg = validate(nano_cfg(rank=17))   # nano's k and v project d_model 32 to 16
    with pytest.raises(UserError, match=r"config lora.rank: 17 exceeds min\(in, out\) = 16 "
                                        r"of layer_0/attn/k \(kernel \[32, 16\]\)"):
        build_model(cfg)
    cfg.lora.targets = ("q", "o")   # 32 x 32 layers: rank 17 fits
    mcfg, params = build_model(cfg)
    cfg.lora.targets = ("q", "v")   # refused when a phase splits off the adapters, too
    with pytest.raises(UserError, match=r"config lora.rank: 17 exceeds .* layer_0/attn/v"):
        build_sft(cfg, mcfg, params, None)
    # an old run directory's config.json has no lora section: LoRA off
    del cfg["lora"]
    assert not lora.enabled(cfg) and build_model(cfg)[0].lora_scale == 1.0


def toy_reward(frozen, tokens, mask, target, target_len):
    return ((tokens % 2 == 1) * mask).sum(1) / jnp.maximum(mask.sum(1), 1), {}


def test_rl_step_trains_only_the_adapters_against_the_base_as_reference():
    cfg = nano_cfg(rank=4)
    cfg.algo.beta = 0.1
    cfg = validate(cfg)
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    assert mcfg.lora_scale == 16.0 / 4
    spec, state, hp, make_batch = build_rl(cfg, mcfg, params, task, reward=toy_reward)
    assert set(state.frozen) == {"base"}, "the KL piece made a reference copy"
    base0 = leaves(state.frozen["base"])
    for x, y in zip(base0, leaves(params)):   # float32: the base as loaded, bitwise
        np.testing.assert_array_equal(x, y)
    n_adapters = size(state.params)
    assert n_adapters < size(params) / 4
    assert 2 * n_adapters <= size(state.opt_state) <= 2 * n_adapters + 16   # Adam's m, v
    step = make_fused_step(spec, donate=False)
    s1, m1 = step(state, make_batch(0), hp)
    assert float(m1["kl"]) == 0.0   # the policy IS the base at step 0
    s2, m2 = step(s1, make_batch(1), hp)
    assert float(m2["kl"]) > 0.0
    for x, y in zip(base0, leaves(s2.frozen["base"])):
        np.testing.assert_array_equal(x, y)
    b = np.asarray(s2.params["layer_0"]["mlp"]["down"]["lora_b"])
    assert np.abs(b).max() > 0, "the adapters did not train"
    assert jax.tree_util.tree_structure(s2.params) == jax.tree_util.tree_structure(state.params)


def test_sft_with_lora_lowers_the_loss_and_keeps_the_base():
    cfg = validate(nano_cfg(rank=8))
    cfg.sft.optim.lr = 3e-3
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    step, state, hp, make_batch = build_sft(cfg, mcfg, params, task)
    fn = jax.jit(step)
    losses = []
    s = state
    for i in range(12):
        s, m = fn(s, make_batch(0), hp)   # one batch, fit it
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0] - 0.05, losses
    for x, y in zip(leaves(state.frozen["base"]), leaves(s.frozen["base"])):
        np.testing.assert_array_equal(x, y)
    full = trained_params(s, mcfg.lora_scale)   # what the next phase starts from
    assert jax.tree_util.tree_structure(full) == jax.tree_util.tree_structure(params)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_bfloat16_base_is_held_in_the_compute_dtype():
    cfg = nano_cfg(rank=2)
    cfg.model.dtype = "bfloat16"
    cfg = validate(cfg)
    mcfg, params = build_model(cfg)
    _, state, _, _ = build_sft(cfg, mcfg, params, build_task(cfg))
    base = state.frozen["base"]
    assert base["layer_0"]["attn"]["q"]["kernel"].dtype == jnp.bfloat16
    assert base["embed"]["embedding"].dtype == jnp.bfloat16
    assert base["final_norm"]["scale"].dtype == jnp.float32
    assert state.params["layer_0"]["attn"]["q"]["lora_a"].dtype == jnp.float32
    tokens = jax.random.randint(jax.random.PRNGKey(2), (2, 7), 0, mcfg.vocab_size)
    # zero adapters on the bf16-held base: the full-model bf16 forward, bitwise
    np.testing.assert_array_equal(
        np.asarray(forward(mcfg, model_params(state.params, state.frozen), tokens)),
        np.asarray(forward(mcfg, params, tokens)))


# ----------------------------------------------------------------- end to end (rlpt.train)

@register("reward", "test_first_token_even")
def first_token_even(completion, completion_mask, target, target_len):
    """A dense reward for the tests below: 1 when a completion's first token id is even. An
    untrained nano model scores 0 on every sample of the task reward (GRPO then has no signal and
    the adapters stay at zero, depending on the random stream); the samples of a group differ
    in their first token, so this one gives GRPO a signal on any stream."""
    return (jnp.asarray(completion)[:, 0] % 2 == 0).astype(jnp.float32), {}


def run_cfg():
    """GRPO with the KL term and LoRA through rlpt.train: 2 LoRA SFT steps (merged into the RL
    base), 4 RL steps on a dense reward (`first_token_even`), checkpoints and evaluations every
    2."""
    cfg = nano_cfg(rank=4)
    cfg.reward.proxy = "test_first_token_even"
    cfg.sft.steps, cfg.rl.steps = 2, 4
    cfg.log_every = cfg.ckpt_every = cfg.eval.every = 2
    cfg.eval.n_samples, cfg.eval.ks = 2, (1, 2)
    cfg.optim.lr = 3e-3
    return cfg


def train_capturing(cfg, workdir, monkeypatch):
    """rlpt.train.run, returning (summary, the final RL state, its model config)."""
    import rlpt.train as train
    got = {}
    real = train.run_rl

    def spy(*a, **k):
        out = real(*a, **k)
        got["state"], got["model_cfg"] = out[0], a[1]
        return out
    monkeypatch.setattr(train, "run_rl", spy)
    summary = train.run(cfg, workdir)
    monkeypatch.setattr(train, "run_rl", real)
    return summary, got.get("state"), got.get("model_cfg")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    workdir = str(tmp_path_factory.mktemp("lora") / "run")
    try:
        summary, state, mcfg = train_capturing(run_cfg(), workdir, mp)
    finally:
        mp.undo()
    return workdir, summary, state, mcfg


def metric_rows(workdir):
    return [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]


def test_grpo_run_with_lora_trains_adapters_and_checkpoints_no_base(lora_run):
    import orbax.checkpoint as ocp
    workdir, summary, state, mcfg = lora_run
    assert summary["rl_steps"] == 4
    assert set(state.frozen) == {"base"}
    assert np.abs(np.asarray(state.params["layer_0"]["attn"]["q"]["lora_b"])).max() > 0
    rl = [r for r in metric_rows(workdir) if r["phase"] == "rl"]
    assert [r["step"] for r in rl] == [1, 2, 3, 4] and rl[0]["kl"] == 0.0
    saved = ocp.StandardCheckpointer().restore(
        os.path.abspath(os.path.join(workdir, "ckpt", "rl", "4", "default")))
    assert "base" not in (saved.get("frozen") or {}), "the frozen base was checkpointed"
    for x, y in zip(leaves(saved["params"]), leaves(state.params)):
        np.testing.assert_array_equal(x, y)
    adapters = size(state.params)
    assert size(saved) < 4 * adapters   # adapters, Adam's moments, counters: no model copy


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_resumed_lora_run_equals_the_uninterrupted_one(lora_run, tmp_path, monkeypatch):
    """Killed (KeyboardInterrupt) right after the RL checkpoint at step 2, then restarted: the
    base is rebuilt (initial model + the SFT adapters, merged), the adapters restored."""
    ref_dir, _, ref_state, _ = lora_run
    workdir = str(tmp_path / "run")
    real_save = Checkpointer.save

    def save_then_stop(self, step, state):
        real_save(self, step, state)
        if self.directory.endswith(os.path.join("ckpt", "rl")) and step == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_capturing(run_cfg(), workdir, monkeypatch)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    _, state, _ = train_capturing(run_cfg(), workdir, monkeypatch)
    for x, y in zip(leaves(state.params), leaves(ref_state.params)):
        np.testing.assert_array_equal(x, y)   # bitwise
    for x, y in zip(leaves(state.frozen["base"]), leaves(ref_state.frozen["base"])):
        np.testing.assert_array_equal(x, y)
    assert metric_rows(workdir) == metric_rows(ref_dir)


def test_export_of_a_lora_run_is_the_merged_model(lora_run, tmp_path):
    """`python -m rlpt.export` (its main) writes a plain HF checkpoint whose logits equal the
    trained policy's, adapters attached, to 1e-5."""
    from rlpt.export import main
    from rlpt.models import load_checkpoint
    workdir, _, state, mcfg = lora_run
    out = str(tmp_path / "hf")
    main([f"--workdir={workdir}", f"--out={out}"])
    hf_cfg, hf_params = load_checkpoint(out)
    assert "lora_a" not in hf_params["layer_0"]["attn"]["q"]
    tokens = jax.random.randint(jax.random.PRNGKey(4), (2, 11), 0, mcfg.vocab_size)
    want = forward(mcfg, model_params(state.params, state.frozen), tokens)
    got = forward(hf_cfg, jax.tree_util.tree_map(jnp.asarray, hf_params), tokens)
    assert float(jnp.max(jnp.abs(want - forward(mcfg, state.frozen["base"], tokens)))) > 1e-4
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=0)


# ----------------------------------------------------------------- preference, reward model

def pref_cfg(algo, rank=4):
    from rlpt.config import config_file
    from conftest import REPO_ROOT
    cfg = config_file(os.path.join(REPO_ROOT, "configs", "dpo_arith.py")).get_config(
        f"algo={algo},size=nano,quick=1")
    cfg.pref.batch_size, cfg.optim.lr, cfg.lora.rank = 8, 1e-2, rank
    return cfg


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_dpo_run_with_lora(tmp_path, monkeypatch):
    """rlpt.preference.train end to end (LoRA SFT merged, then DPO): the pref state holds the
    adapters on the SFT model as base and reference (no copy); step 0 is policy == reference
    (loss log 2); the adapters train and the held-out pair loss falls."""
    import rlpt.preference.train as pt
    got = []
    real = pt.train_phase

    def spy(name, step_obj, state, *a, **k):
        got.append((name, jax.tree_util.tree_map(np.asarray, state)))
        final = real(name, step_obj, state, *a, **k)
        got.append((name, final))
        return final
    monkeypatch.setattr(pt, "train_phase", spy)
    cfg = pref_cfg("dpo")
    cfg.algo.beta, cfg.optim.lr = 0.5, 3e-2
    cfg.pref.steps = cfg.ckpt_every = cfg.log_every = cfg.eval.every = 4
    summary = pt.run(cfg, str(tmp_path / "w"))
    (name, state), (_, final) = got
    assert name == "pref" and set(state.frozen) == {"base"}
    assert "lora_a" in state.params["layer_0"]["mlp"]["up"]
    assert max(np.abs(x - y).max() for x, y in zip(leaves(final.params),
                                                   leaves(state.params))) > 0
    rows = [r for r in metric_rows(str(tmp_path / "w")) if r["phase"] == "pref"]
    assert rows[0]["loss"] == pytest.approx(np.log(2.0), abs=1e-6)
    evals = [r for r in metric_rows(str(tmp_path / "w")) if r["phase"] == "pref_eval"]
    assert evals[0]["pair_loss"] == pytest.approx(np.log(2.0), abs=1e-6)
    assert evals[-1]["pair_loss"] < evals[0]["pair_loss"] - 1e-5, evals   # held-out pairs
    assert summary["final"]["pair_acc"] > 0.5


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_online_dpo_generator_is_a_copy_of_the_adapters():
    from rlpt.preference.config import hparams, validate as validate_pref
    from rlpt.preference.step import jit_step
    from rlpt.preference.train import policy_state, policy_step
    from rlpt.tasks.synthetic_pairs import SyntheticPairs
    cfg = pref_cfg("online_dpo")
    cfg.algo.num_samples = 4
    cfg = validate_pref(cfg)
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    task.reward = lambda tokens, mask, *_: ((tokens[:, 0] % 4 == 0).astype(jnp.float32), {})
    step = policy_step(cfg, mcfg, task)
    state = policy_state(cfg, step, params, params)
    assert set(state.frozen) == {"base", "generator"}
    assert jax.tree_util.tree_structure(state.frozen["generator"]) == \
        jax.tree_util.tree_structure(state.params)
    fn, src = jit_step(step, donate=False), SyntheticPairs(task)
    s = state
    for i in range(2):
        s, m = fn(s, src.make_batch(0, i, 8), hparams(cfg))
        assert np.isfinite(float(m["loss"]))
    np.testing.assert_array_equal(   # synced at update 1 (s=1): the adapters after update 0
        leaves(s.frozen["generator"])[0], leaves(fn(state, src.make_batch(0, 0, 8),
                                                    hparams(cfg))[0].params)[0])
    assert max(np.abs(x - y).max() for x, y in zip(leaves(s.params), leaves(state.params))) > 0


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
def test_reward_model_with_lora_trains_backbone_adapters_and_head():
    from conftest import REPO_ROOT
    from rlpt.config import config_file
    from rlpt.preference.config import rm_hparams, validate as validate_pref
    from rlpt.preference.step import jit_step
    from rlpt.preference.train import rm_state, rm_step
    from rlpt.tasks.synthetic_pairs import SyntheticPairs
    cfg = config_file(os.path.join(REPO_ROOT, "configs", "rm_arith.py")).get_config(
        "kind=bt,size=nano,quick=1")
    cfg.lora.rank = 2
    cfg = validate_pref(cfg)
    task = build_task(cfg)
    mcfg, policy = build_model(cfg)
    step = rm_step(cfg, mcfg, task)
    state = rm_state(cfg, mcfg, step, policy)
    assert set(state.params) == {"backbone", "value_head"} and set(state.frozen) == {"base"}
    assert "kernel" not in state.params["backbone"]["layer_0"]["attn"]["q"]
    fn, src = jit_step(step, donate=False), SyntheticPairs(task)
    s = state
    for i in range(2):
        s, m = fn(s, src.make_groups(cfg.seed, i, 8, cfg.rm.group_size), rm_hparams(cfg))
        assert np.isfinite(float(m["loss"]))
    for part in ("backbone", "value_head"):
        assert max(np.abs(x - y).max() for x, y in zip(leaves(s.params[part]),
                                                       leaves(state.params[part]))) > 0
    for x, y in zip(leaves(s.frozen["base"]), leaves(state.frozen["base"])):
        np.testing.assert_array_equal(x, y)
    merged = trained_params(s, mcfg.lora_scale)   # what DRPO would read as its frozen RM
    assert set(merged) == {"backbone", "value_head"}
    assert "lora_a" not in merged["backbone"]["layer_0"]["attn"]["q"]


# ----------------------------------------------------------------- a GGUF file as the base

def test_gguf_base_trains_a_lora_step(tmp_path):
    pytest.importorskip("gguf")
    from gguf_writer import tiny_vocab, write_gguf
    from rlpt.models import ModelConfig
    mcfg0 = ModelConfig(vocab_size=len(tiny_vocab()[0]), d_model=64, n_layers=2, n_heads=4,
                        n_kv_heads=2, d_ff=96, rms_eps=1e-5, max_seq_len=128)
    params0 = jax.tree_util.tree_map(np.asarray, init_params(mcfg0, jax.random.PRNGKey(0)))
    path = write_gguf(tmp_path / "m.gguf", mcfg0, params0)
    cfg = nano_cfg(rank=4, targets=("q", "v"))
    cfg.model.checkpoint = str(path)
    cfg = validate(cfg)
    mcfg, params = build_model(cfg)
    assert mcfg.lora_scale == 4.0
    step, state, hp, _ = build_sft(cfg, mcfg, params, None)
    assert set(state.params["layer_1"]["attn"]) == {"q", "v"} and "mlp" not in \
        state.params["layer_1"]
    rng = np.random.default_rng(0)
    P, S = 4, 5
    batch = {"prompt": rng.integers(3, mcfg.vocab_size, (4, P)), "prompt_mask": np.ones((4, P)),
             "solution": rng.integers(3, mcfg.vocab_size, (4, S)),
             "solution_mask": np.ones((4, S))}
    s, m = jax.jit(step)(state, batch, hp)
    assert np.isfinite(float(m["loss"]))
    assert np.abs(np.asarray(s.params["layer_0"]["attn"]["v"]["lora_b"])).max() > 0
    for x, y in zip(leaves(s.frozen["base"]), leaves(params0)):   # the file's weights, as read
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow   # the default suite's time (README, Tests); -m slow runs it
@pytest.mark.parametrize("algo", ["ppo", "relift"])
def test_algorithms_with_their_own_trainables_and_updates_run_on_lora(algo):
    """PPO's value head trains beside the adapters (carried over by attach); ReLIFT's SFT update
    in `after_update` runs on the attached adapters."""
    from rlpt.config import base_config
    cfg = base_config(algo)
    cfg.model.preset, cfg.lora.rank, cfg.wandb.mode = "nano", 2, "disabled"
    cfg.rl.batch_size, cfg.sampling.num_samples, cfg.sampling.max_new_tokens = 4, 4, 4
    if algo == "relift":
        cfg.algo.sft_buffer_size = 1   # an SFT update as soon as a prompt fails
    cfg = validate(cfg)
    task = build_task(cfg)
    mcfg, params = build_model(cfg)
    spec, state, hp, make_batch = build_rl(cfg, mcfg, params, task,
                                           reward=lambda *a: (jnp.zeros(a[1].shape[0]), {}))
    assert "kernel" not in state.params["layer_0"]["attn"]["q"]
    s, m = make_fused_step(spec, donate=False)(state, make_batch(0), hp)
    assert np.isfinite(float(m["loss"]))
    if algo == "ppo":
        assert set(state.params) >= {"value_head", "layer_0"}
        assert np.abs(np.asarray(s.params["value_head"]["kernel"]
                             - state.params["value_head"]["kernel"])).max() > 0
    else:
        assert float(m["relift_sft_applied"]) == 1.0
        assert np.abs(np.asarray(s.params["layer_0"]["mlp"]["up"]["lora_b"])).max() > 0
    for x, y in zip(leaves(s.frozen["base"]), leaves(state.frozen["base"])):
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow   # 13 s; the sweep machinery itself is in the default suite (test_sweep.py)
def test_a_vmapped_sweep_group_trains_lora(tmp_path):
    """Two LoRA runs (seeds 0, 1) in one vmapped program: the SFT adapters merged per run, RL on
    each run's own base, evaluations on the attached adapters; the SFT cache key covers LoRA.
    (~13 s after this file's other tests, ~27 s alone: compiling the vmapped programs.)"""
    from tqdm import tqdm
    from sweep_helpers import small_config
    from rlpt.sweep import sft_cache
    from rlpt.sweep.points import group_points, points_to_configs
    from rlpt.sweep.run import run_group
    base = small_config(sft_steps=2, rl_steps=2)
    base.eval.every, base.lora.rank = 2, 2
    base.eval.n_prompts, base.eval.n_samples, base.eval.ks = 4, 2, (1, 2)
    [group] = group_points(points_to_configs(base, [{"config.seed": 0}, {"config.seed": 1}]))
    summaries = run_group(group, str(tmp_path / "sweep"), tqdm(disable=True))
    assert [s["rl_steps"] for s in summaries] == [2, 2]
    rows = [metric_rows(str(tmp_path / "sweep" / "points" / p.name)) for p in group.points]
    rl = [[r for r in rs if r["phase"] == "rl"] for rs in rows]
    assert all(len(r) == 2 and np.isfinite(r[-1]["loss"]) for r in rl)
    assert rl[0][0]["kl"] == 0.0 and rl[0][-1]["loss"] != rl[1][-1]["loss"]
    off = group.points[0].cfg.copy_and_resolve_references()
    off.lora.rank = 0
    assert sft_cache.sft_key(off) != sft_cache.sft_key(group.points[0].cfg)

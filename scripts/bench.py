"""Benchmark of the fused GRPO step on the reference workloads of the trainer issue (W1, W2:
random-init presets on the character tokenizer) and of issue 14 (W3: SmolLM2-135M-Instruct from
its GGUF file, chat prompts rendered with its own template).

    python scripts/bench.py                 # W1 and W2, rlpt only
    python scripts/bench.py --workloads W3 --trl   # SmolLM2-135M-Instruct vs TRL on the same weights
    python scripts/bench.py --trl           # also HF TRL's GRPOTrainer on the same workload
    python scripts/bench.py --loops while,scan   # compare the sampler's decode loops

For each workload it prints the fused step's median time over steady-state steps, completion
tokens/s, the analytic FLOP count and achieved FLOP/s as a fraction of the float32 matmul peak
measured in the same run, and where the time goes (sampling, reference forward, update), each
piece timed as its own jitted program. With --trl (needs `pip install trl torch==2.13.0`) it runs
TRL's GRPOTrainer on the identical workload (same shapes, random init, prompts, G, forced
completion length, beta, one update per step) and prints the ratio as `N.NNx vs TRL`. For W3 TRL
gets the same weights (transformers de-quantises the same GGUF to float32), the same rendered
chat prompts and the same tokenizer. The GGUF is read from ../shared/data/smollm2 (override
with RLPT_SMOLLM2_GGUF).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from rlpt.config import base_config, validate  # noqa: E402
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt import registry  # noqa: E402
from rlpt.algorithms.base import split_algo_config  # noqa: E402
from rlpt.config import hparams  # noqa: E402
from rlpt.logprobs import completion_logprobs  # noqa: E402
from rlpt.optim import make_optimizer  # noqa: E402
from rlpt.sampling import PLAIN_ROLLOUT, SamplingConfig  # noqa: E402
from rlpt.state import frozen_copy, new_state  # noqa: E402
from rlpt.step import StepSpec, fused_step, rollout_phase, update_phase  # noqa: E402
from rlpt.sampling import completion_inputs  # noqa: E402
from rlpt.shapes import zero_reward  # noqa: E402
from rlpt import sampling  # noqa: E402
from rlpt.tokenizers import CharTokenizer  # noqa: E402

WORKLOADS = {
    # name: (model preset or checkpoint, prompts, G, new tokens)
    "W1": ("bench_w1", 8, 8, 32),
    "W2": ("bench_w2", 8, 8, 64),
    "W3": ("smollm2", 4, 4, 32),
}
SMOLLM2_GGUF = os.environ.get("RLPT_SMOLLM2_GGUF", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
    "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
W3_QUESTIONS = ["What is 17 + 25?", "Name three primary colours.",
                "Write a haiku about the sea.", "Tom has 3 apples and buys 4 more. How many now?"]


def w3_prompts(tok):
    """The W3 prompts rendered with SmolLM2's own chat template (its default system prompt)."""
    return [tok.apply_chat_template([{"role": "user", "content": q}]) for q in W3_QUESTIONS]


def workload_texts(name):
    if name == "W3":
        from rlpt.tokenizers import load_tokenizer
        return w3_prompts(load_tokenizer(SMOLLM2_GGUF))
    return prompts(WORKLOADS[name][1])


def workload(name):
    """(model_cfg, params, prompt token ids, stop tokens, pad id, prompt strings) of a workload."""
    preset, B = WORKLOADS[name][:2]
    if name == "W3":
        from rlpt.models import load_checkpoint
        from rlpt.tokenizers import load_tokenizer
        mcfg, params = load_checkpoint(SMOLLM2_GGUF)
        tok = load_tokenizer(SMOLLM2_GGUF)
        texts = w3_prompts(tok)
        return (mcfg, jax.tree_util.tree_map(jnp.asarray, params),
                [tok.encode(t) for t in texts], (tok.eos_id,), tok.pad_id, texts)
    mcfg = get_model_config(preset)
    tok = CharTokenizer()
    texts = prompts(B)
    return (mcfg, init_params(mcfg, jax.random.PRNGKey(0)),
            [tok.encode(p, bos=True) for p in texts], (tok.eos_id,), tok.pad_id, texts)


def prompts(n, seed=0):
    rng = np.random.default_rng(seed)
    return [f"{a}+{b}=" for a, b in rng.integers(100, 1000, size=(n, 2))]


def flops_per_step(mcfg, n_prompts, P, G, T):
    """Analytic FLOPs the fused step executes: 2*(matmul params) per token plus attention (QK^T
    and PV) per token, for sampling (prefill B*P + decode N*T tokens), the reference forward
    and the policy forward+backward (3x forward). The training passes compute each prompt once
    per group (B*P prompt tokens, then N*T completion tokens against the prompt's K/V); the
    naive count over N*(P+T) tokens is returned second, for comparison with peers that
    recompute the prompt for each of the G rows."""
    d, hd, L = mcfg.d_model, mcfg.hd, mcfg.n_layers
    matmul = L * (d * hd * (2 * mcfg.n_heads + 2 * mcfg.n_kv_heads) + 3 * d * mcfg.d_ff) \
        + d * mcfg.vocab_size
    attn = lambda ctx: 4 * L * ctx * mcfg.n_heads * hd
    N, S = n_prompts * G, P + T
    prompts = n_prompts * P * (2 * matmul + attn(P / 2))
    sample = prompts + N * T * (2 * matmul + attn(S))
    shared = prompts + N * T * (2 * matmul + attn(P + T / 2))
    naive = N * S * (2 * matmul + attn(S / 2))
    return sample + 4 * shared, sample + 4 * naive, sample, shared


def matmul_peak(n=2048, reps=10):
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f(a, a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / min(times)


def timed(fn, *args, steps):
    out = fn(*args)
    jax.block_until_ready(out)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timed_rounds(programs, steps):
    """Median seconds of each `name: (fn, args)`, compiled first, then timed in `steps` rounds
    that run every program once in turn (so a load change on the shared machine hits all)."""
    for fn, args in programs.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in programs}
    for _ in range(steps):
        for name, (fn, args) in programs.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def rlpt_config(G, T, loop):
    c = base_config("grpo")
    c.sampling.num_samples, c.sampling.max_new_tokens, c.sampling.min_new_tokens = G, T, T
    c.sampling.loop = loop
    c.algo.beta = 0.04
    c.optim.lr = 1e-6
    return validate(c)


def bench_rlpt(name, loop, steps):
    _, B, G, T = WORKLOADS[name]
    cfg = rlpt_config(G, T, loop)
    mcfg, params, ids, stop_tokens, pad_id, _ = workload(name)
    P = max(map(len, ids))
    batch = {"prompt": jnp.asarray([[pad_id] * (P - len(i)) + i for i in ids], jnp.int32),
             "prompt_mask": jnp.asarray([[0] * (P - len(i)) + [1] * len(i) for i in ids],
                                        jnp.int32),
             "target": jnp.zeros((B, 4), jnp.int32), "target_len": jnp.full((B,), 3, jnp.int32)}
    s = cfg.sampling
    scfg = SamplingConfig(max_new_tokens=s.max_new_tokens, num_samples=s.num_samples,
                          temperature=s.temperature, stop_tokens=stop_tokens,
                          min_new_tokens=s.min_new_tokens, pad_id=pad_id, loop=s.loop)
    spec = StepSpec(model_cfg=mcfg, scfg=scfg, algorithm=registry.get("algorithm", "grpo"),
                    algo=split_algo_config(cfg.algo)[0],
                    advantage=registry.get("advantage", cfg.algo.advantage),
                    optimizer=make_optimizer(cfg.optim), rollout=PLAIN_ROLLOUT,
                    reward=zero_reward, batch_size=B)
    state = new_state(params, spec.optimizer, 0, frozen={"reference": frozen_copy(params)})
    hp = hparams(cfg)

    fused = jax.jit(lambda st, b, h: fused_step(spec, st, b, h))  # no donation: re-run the state
    rollout = jax.jit(lambda st, b, h: rollout_phase(spec, st, b, h)[1])
    out = rollout(state, batch, hp)
    tokens, valid = completion_inputs(batch["prompt"], batch["prompt_mask"], out, G)
    ref = jax.jit(lambda p, t, v: completion_logprobs(mcfg, p, t, v, P, 1.0, group_size=G)[0])
    update = jax.jit(lambda st, b, o, r, h: update_phase(spec, st, b, o, r, h))
    rewards = jnp.asarray(np.random.default_rng(0).integers(0, 2, B * G), jnp.float32)
    programs = {"fused": (fused, (state, batch, hp)), "sample": (rollout, (state, batch, hp)),
                "ref": (ref, (state.frozen["reference"], tokens, valid)),
                "update": (update, (state, batch, out, rewards, hp))}
    if T * B * G * mcfg.vocab_size <= sampling._NOISE_TABLE_MAX:
        def per_step_noise(st, b, h):  # the sampler with the Gumbel noise drawn in every step
            cap, sampling._NOISE_TABLE_MAX = sampling._NOISE_TABLE_MAX, 0
            try:
                return rollout_phase(spec, st, b, h)[1]
            finally:
                sampling._NOISE_TABLE_MAX = cap
        programs["sample_per_step_noise"] = (jax.jit(per_step_noise), (state, batch, hp))
    t = timed_rounds(programs, steps)
    t_fused, t_sample, t_ref, t_update = t["fused"], t["sample"], t["ref"], t["update"]
    assert int(np.asarray(out.lengths).min()) == T, "EOS must be suppressed (forced length)"
    flops, naive_flops, sample_flops, shared_flops = flops_per_step(mcfg, B, P, G, T)
    return dict(name=name, loop=loop, t=t_fused, sample=t_sample, ref=t_ref, update=t_update,
                sample_per_step_noise=t.get("sample_per_step_noise"), tokens=B * G * T, flops=flops, naive_flops=naive_flops,
                sample_flops=sample_flops, shared_flops=shared_flops)


def trl_w3_model():
    """SmolLM2 for TRL: transformers de-quantises the same GGUF to float32 (as rlpt's loader
    does) and saves it as a HF directory, because TRL builds its reference model from a path."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(SMOLLM2_GGUF)
    model_dir = "/tmp/rlpt_bench_trl/model_W3"
    hf_tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    hf_tok.padding_side = "left"
    gguf_model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    cfg = gguf_model.config
    if hasattr(cfg, "quantization_config"):  # de-quantised already; a GGUF model won't save
        del cfg.quantization_config
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.save_pretrained(model_dir)
    hf_tok.save_pretrained(model_dir)
    return model_dir, hf_tok


def bench_trl(name, steps, texts):
    """TRL GRPOTrainer on the identical workload (CPU, torch float32); `texts` are the prompts
    exactly as rlpt tokenizes them."""
    import torch
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    preset, B, G, T = WORKLOADS[name]
    if name == "W3":
        model_dir, hf_tok = trl_w3_model()
        data = Dataset.from_dict({"prompt": list(texts) * (steps + 3)})
    else:
        m = get_model_config(preset)
        ct = CharTokenizer()
        tk = Tokenizer(models.WordLevel({s: i for i, s in enumerate(ct.itos)}, unk_token="<unk>"))
        tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")
        hf_tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>",
                                         bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                         padding_side="left")
        hcfg = Qwen2Config(vocab_size=m.vocab_size, hidden_size=m.d_model,
                           intermediate_size=m.d_ff, num_hidden_layers=m.n_layers,
                           num_attention_heads=m.n_heads, num_key_value_heads=m.n_kv_heads,
                           tie_word_embeddings=True, max_position_embeddings=256, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2)
        torch.manual_seed(0)
        model_dir = f"/tmp/rlpt_bench_trl/model_{name}"  # TRL builds the reference from a path
        Qwen2ForCausalLM(hcfg).save_pretrained(model_dir)
        data = Dataset.from_dict({"prompt": ["<bos>" + p for p in texts] * (steps + 3)})

    def reward(completions, **kw):
        return [0.0 for _ in completions]

    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    args = GRPOConfig(output_dir="/tmp/rlpt_bench_trl", per_device_train_batch_size=B * G,
                      num_generations=G, max_completion_length=T, beta=0.04, learning_rate=1e-6,
                      num_iterations=1, max_steps=steps + 2, logging_steps=1000, report_to="none",
                      use_cpu=True, save_strategy="no", bf16=False, disable_dropout=True,
                      generation_kwargs={"min_new_tokens": T}, seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model_dir, reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=hf_tok, callbacks=[Timer()])
    trainer.train()
    return statistics.median(times[2:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--loops", default="while")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--trl", action="store_true")
    a = ap.parse_args()
    peak = matmul_peak()
    print(f"devices: {jax.devices()}; float32 matmul peak (2048^3, best of 10): "
          f"{peak / 1e9:.1f} GFLOP/s")
    print(f"load average before the run: {os.getloadavg()[0]:.2f} (timings assume an idle "
          "machine; anything else running slows both rlpt and TRL)")
    for name in a.workloads.split(","):
        results = []
        for loop in a.loops.split(","):
            r = bench_rlpt(name, loop, a.steps)
            results.append(r)
            achieved = r["flops"] / r["t"]
            print(f"\n{name} [{WORKLOADS[name][0]}, loop={loop}] fused step median {r['t']:.3f} s "
                  f"| {r['tokens'] / r['t']:,.0f} completion tokens/s | {r['flops'] / 1e9:.1f} "
                  f"GFLOP/step, {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of peak "
                  f"(without prompt sharing the step would be {r['naive_flops'] / 1e9:.1f} GFLOP)")
            print(f"   separately jitted: sampling {r['sample']:.3f} s, reference fwd "
                  f"{r['ref']:.3f} s, update (old/ref logp + fwd/bwd + adam) {r['update']:.3f} s; "
                  f"fused - sampling - update = {r['t'] - r['sample'] - r['update']:+.3f} s")
            if r["sample_per_step_noise"] is not None:
                print(f"   sampling with the Gumbel noise table {r['sample']:.3f} s, with the noise "
                      f"drawn in every decode step {r['sample_per_step_noise']:.3f} s")
            rate = lambda f, t: f"{f / 1e9:.0f} GFLOP, {f / t / 1e9:.0f} GFLOP/s = {f / t / peak:.0%}"
            print(f"   of peak: sampling {rate(r['sample_flops'], r['sample'])}; reference fwd "
                  f"{rate(r['shared_flops'], r['ref'])}; update {rate(4 * r['shared_flops'], r['update'])}"
                  f"; load average now {os.getloadavg()[0]:.2f}")
        if a.trl:
            t_trl = bench_trl(name, a.steps, workload_texts(name))
            print(f"   TRL GRPOTrainer median step {t_trl:.3f} s "
                  f"({r['tokens'] / t_trl:,.0f} completion tokens/s)")
            for r in results:
                print(f"   rlpt (loop={r['loop']}) {t_trl / r['t']:.2f}x vs TRL")


if __name__ == "__main__":
    main()

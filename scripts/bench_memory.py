"""Memory of the compiled GRPO step with each memory feature, as XLA:CPU assigns its buffers.

    python scripts/bench_memory.py                  # W3-long: SmolLM2-135M-Instruct, this CPU
    python scripts/bench_memory.py --shapes         # Qwen2.5 presets from shapes alone (docs/memory.md)

**W3-long** is the W3 workload of scripts/bench.py (SmolLM2-135M-Instruct from the GGUF in
../shared/data/smollm2, its 4 chat prompts x G=4, beta 0.04: a KL reference) with 128 new tokens
(forced: EOS suppressed). For each feature alone and all together it builds the run through the
trainer's own builders (rlpt.build: `build_model`, `build_rl`), lowers and compiles the fused step
(`jax.jit(fused_step).lower(...).compile()`), and prints

- the compiled step's memory from `memory_analysis()`: temp bytes (activations, logits, the
  sampler's KV cache, gradients: what the program allocates while it runs) + argument bytes
  (the state: trainable params, optimizer moments, frozen models; and the batch);
- the step's median wall time over `--steps` runs on this CPU (after compiling);
- its equality with the plain path: the largest |log-prob difference| of the same completions
  (teacher-forced by the variant's forward from the same weights; LoRA adapters start at B = 0,
  so its policy is the base) and, where the trainable parameters are the same, the largest
  relative difference of the policy-gradient's gradient.

and last one line `W3-long compiled memory: plain X.XX GB, all features Y.YY GB (Z.ZZx less)`.
A last row, not in the union, adds `rl.grad_accum=4` (one prompt group per microbatch) to all
features: the accumulation's memory and its extra forward's time. `--w3_features` runs only the
named rows (and plain).

**--shapes** lowers the same step for the Qwen2.5-0.5B, 1.5B and 7B presets at 1,024 and 4,096
new tokens, 8 prompts x G=8 (prompt width 256), from `jax.ShapeDtypeStruct`s only (no weight is
allocated: the state's shapes come from `jax.eval_shape` over the builders), on one device and on
an 8-device FSDP mesh (fake CPU devices), plain, with the features on, and with them on and the
update's gradient accumulated over 8 microbatches (`rl.grad_accum=8`: one prompt group of 8
rows at a time), and prints the markdown table of docs/memory.md. XLA:CPU's buffer assignment is what is measured; a GPU or TPU compiler
assigns buffers differently (and fuses attention in its own kernels), so read it as an estimate
of the shape of the costs, not as a promise for another backend.
"""
import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time

# XLA:CPU undoes jax.checkpoint unless its cse_barrier_expander pass is off (rlpt.build.
# warn_remat_on_cpu): every row here is compiled with that pass disabled, plain included, so remat is
# measured as a CPU user who sets it gets it. The 8-device mesh of --shapes needs fake devices.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_disable_hlo_passes=cse_barrier_expander"
                           + (" --xla_force_host_platform_device_count=8"
                              if "--shapes" in sys.argv else "")).strip()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rlpt import sharding  # noqa: E402
from rlpt.build import build_model, build_rl, with_memory_options  # noqa: E402
from rlpt.config import base_config, override, validate  # noqa: E402
from rlpt.logprobs import completion_logprobs  # noqa: E402
from rlpt.sampling import completion_inputs  # noqa: E402
from rlpt.state import model_params  # noqa: E402
from rlpt.shapes import PromptTask, compile_from_shapes, memory_of, zero_reward  # noqa: E402
from rlpt.step import fused_step, rollout_phase  # noqa: E402

GB = 1e9
W3_QUESTIONS = ["What is 17 + 25?", "Name three primary colours.",
                "Write a haiku about the sea.", "Tom has 3 apples and buys 4 more. How many now?"]
SMOLLM2_GGUF = os.environ.get("RLPT_SMOLLM2_GGUF", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
    "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))

# Each feature as config overrides (the keys a user sets); "all" is their union.
W3_FEATURES = {
    "plain": {},
    "remat (block)": {"model.remat": "block"},
    "blockwise attention": {"model.attention": "blockwise", "model.attention_block": 64},
    "chunked log-probs": {"model.logits_chunk": 16},
    "LoRA r=16": {"lora.rank": 16},
    "bf16 compute": {"model.dtype": "bfloat16"},
}
SHAPE_FEATURES = {
    "remat (block)": {"model.remat": "block"},
    "blockwise attention": {"model.attention": "blockwise", "model.attention_block": 512},
    "chunked log-probs": {"model.logits_chunk": 128},
    "LoRA r=16": {"lora.rank": 16},
    "bf16 compute": {"model.dtype": "bfloat16"},
}

ACCUMULATED = "all features + rl.grad_accum=8"   # --shapes: one prompt group per microbatch


def with_all(features):
    out = dict(features)
    out["all features"] = {k: v for f in features.values() for k, v in f.items()}
    return out


def grpo_config(G, T, overrides, stop_tokens=(2,), pad_id=0):
    c = base_config("grpo")
    c.sampling.num_samples, c.sampling.max_new_tokens, c.sampling.min_new_tokens = G, T, T
    c.sampling.stop_tokens, c.sampling.pad_id = tuple(stop_tokens), pad_id
    c.algo.beta = 0.04
    c.optim.lr = 1e-6
    for key, value in overrides.items():
        override(c, key, str(value))
    return c


# ------------------------------------------------------------------------------ W3-long

def w3_task():
    from rlpt.tokenizers import load_tokenizer
    tok = load_tokenizer(SMOLLM2_GGUF)
    ids = [tok.encode(tok.apply_chat_template([{"role": "user", "content": q}]))
           for q in W3_QUESTIONS]
    P = max(map(len, ids))
    prompt = np.asarray([[tok.pad_id] * (P - len(i)) + i for i in ids], np.int32)
    mask = np.asarray([[0] * (P - len(i)) + [1] * len(i) for i in ids], np.int32)
    return PromptTask(prompt, mask), tok


def policy_logp(spec, params, frozen, tokens, valid, P):
    """Teacher-forced log-probs of the completion tokens and the gradient of their masked sum
    with respect to the trainable parameters."""
    def f(p):
        logp, _ = completion_logprobs(spec.model_cfg, model_params(p, frozen), tokens, valid, P,
                                      spec.scfg.temperature, group_size=spec.G)
        return logp.sum(), logp
    (_, logp), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(params)
    return logp, grads


def bench_w3(steps: int, T: int, only=None):
    """The W3-long rows (`only`: the names to run; plain always runs, it is the reference)."""
    task, tok = w3_task()
    G = 4
    plain_cfg = validate(grpo_config(G, T, {"model.checkpoint": SMOLLM2_GGUF}, (tok.eos_id,),
                                     tok.pad_id))
    loaded_cfg, base = build_model(plain_cfg)
    results, reference = {}, None
    features = with_all(W3_FEATURES)
    features["all features + rl.grad_accum=4"] = dict(features["all features"],
                                                       **{"rl.grad_accum": 4})
    for name, feats in features.items():
        if only and name != "plain" and name not in only:
            continue
        cfg = validate(grpo_config(G, T, dict(feats, **{"model.checkpoint": SMOLLM2_GGUF}),
                                   (tok.eos_id,), tok.pad_id))
        model_cfg = with_memory_options(cfg, dataclasses.replace(loaded_cfg,
                                                                 dtype=cfg.model.dtype))
        spec, state, hp, make_batch = build_rl(cfg, model_cfg, base, task, reward=zero_reward)
        batch = jax.tree_util.tree_map(jnp.asarray, make_batch(0))
        step = jax.jit(functools.partial(fused_step, spec))
        t0 = time.perf_counter()
        compiled = step.lower(state, batch, hp).compile()
        compile_s = time.perf_counter() - t0
        mem = memory_of(compiled)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(state, batch, hp))
            times.append(time.perf_counter() - t0)
        P = batch["prompt"].shape[1]
        if reference is None:   # the plain path's completions, teacher-forced by every variant
            out = jax.jit(lambda s, b, h: rollout_phase(spec, s, b, h)[1])(state, batch, hp)
            tokens, valid = completion_inputs(batch["prompt"], batch["prompt_mask"], out, G)
            reference = (tokens, valid)
        logp, grads = policy_logp(spec, state.params, state.frozen, *reference, P)
        row = dict(mem, time=statistics.median(times[1:]), compile=compile_s, logp=logp,
                   grads=grads, trainable=sum(x.size for x in jax.tree_util.tree_leaves(
                       state.params)))
        plain = results.get("plain")
        row["logp_diff"] = 0.0 if plain is None else float(jnp.max(jnp.abs(logp - plain["logp"])))
        row["grad_diff"] = None
        if plain is not None and row["trainable"] == plain["trainable"]:
            num = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
                jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(plain["grads"])))
            den = max(float(jnp.max(jnp.abs(b))) for b in jax.tree_util.tree_leaves(plain["grads"]))
            row["grad_diff"] = num / den
        results[name] = row
        print(f"{name:30s} temp {mem['temp'] / GB:6.2f} GB + argument {mem['argument'] / GB:5.2f} "
              f"GB = {mem['total'] / GB:6.2f} GB | step {row['time']:6.2f} s (compile "
              f"{compile_s:5.1f} s) | max |dlogp| {row['logp_diff']:.2e}"
              + ("" if row["grad_diff"] is None else f", grad rel. diff {row['grad_diff']:.2e}")
              + f" | trainable {row['trainable'] / 1e6:.2f}M", flush=True)
        del state, compiled, step
    if "all features" in results:
        plain, every = results["plain"]["total"], results["all features"]["total"]
        print(f"W3-long compiled memory: plain {plain / GB:.2f} GB, all features "
              f"{every / GB:.2f} GB ({plain / every:.2f}x less)")
    return results


# ------------------------------------------------------------------------ real shapes

def bench_shapes(presets, lengths, meshes, features):
    rows = []
    print("| model | new tokens | devices | features | temp GB | arguments GB | temp + arguments "
          "GB | fits 80 GB |")
    print("|---|---|---|---|---|---|---|---|")
    for preset in presets:
        for T in lengths:
            for n_dev in meshes:
                mesh = sharding.make_mesh({"data": 1, "fsdp": n_dev, "tensor": 1},
                                          jax.devices()[:n_dev])
                for name, feats in features.items():
                    cfg = grpo_config(8, T, dict(feats, **{"model.preset": preset}))
                    cfg.rl.batch_size = 8
                    cfg.model.dtype = feats.get("model.dtype", "float32")
                    cfg = validate(cfg)
                    t0 = time.perf_counter()
                    try:
                        mem = memory_of(compile_from_shapes(cfg, mesh))
                    except Exception as e:   # a combination XLA cannot compile is a row too
                        print(f"| {preset} | {T} | {n_dev} | {name} | failed: "
                              f"{type(e).__name__}: {str(e).splitlines()[0][:120]} |||||",
                              flush=True)
                        continue
                    rows.append(dict(preset=preset, T=T, devices=n_dev, features=name, **mem))
                    print(f"| {preset} | {T} | {n_dev} | {name} | {mem['temp'] / GB:.2f} | "
                          f"{mem['argument'] / GB:.2f} | {mem['total'] / GB:.2f} | "
                          f"{'yes' if mem['total'] < 80 * GB else 'no'} |  "
                          f"<!-- compiled in {time.perf_counter() - t0:.0f} s -->", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", action="store_true", help="the Qwen2.5 table of docs/memory.md")
    ap.add_argument("--steps", type=int, default=3, help="timed W3-long steps per feature")
    ap.add_argument("--new_tokens", type=int, default=128, help="W3-long completion length")
    ap.add_argument("--presets", default="qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-7b")
    ap.add_argument("--lengths", default="1024,4096")
    ap.add_argument("--devices", default="1,8")
    ap.add_argument("--features", default=f"plain,all features,{ACCUMULATED}",
                    help="which rows of --shapes (comma-separated; 'every' = each alone too)")
    ap.add_argument("--w3_features", default="",
                    help="W3-long: only these rows (comma-separated; plain always runs)")
    a = ap.parse_args()
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs; load "
          f"average {os.getloadavg()[0]:.2f}", flush=True)
    if a.shapes:
        feats = with_all(dict({"plain": {}}, **SHAPE_FEATURES))
        feats[ACCUMULATED] = dict(feats["all features"], **{"rl.grad_accum": 8})
        if a.features != "every":
            feats = {k: v for k, v in feats.items() if k in a.features.split(",")}
        bench_shapes(a.presets.split(","), [int(x) for x in a.lengths.split(",")],
                     [int(x) for x in a.devices.split(",")], feats)
    else:
        bench_w3(a.steps, a.new_tokens, [f for f in a.w3_features.split(",") if f])
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Per-device memory of a GRPO run, from the model presets: a planning table for docs/scaling.md.

    python scripts/plan_memory.py                        # the table in docs/scaling.md
    python scripts/plan_memory.py --presets qwen2.5-7b --devices 16,32 --prompts 64

Everything is an estimate from shapes (no device is touched), for the layout rlpt uses
(rlpt.sharding): parameters, gradients, Adam moments and the frozen reference are sharded over
all `fsdp x tensor` devices (ZeRO-3 / Megatron rules); rollout rows are split over the data and
fsdp axes, KV heads over tensor. Terms, in bytes per device:

- params      P * 4 (float32 master weights) / n
- grads       P * 4 / n
- adam        2 * P * 4 / n (first and second moments)
- reference   P * c / n (c = compute dtype bytes; only with a KL term)
- kv cache    rows * S * L * 2 * kv_heads * head_dim * c / n (sampling; S = prompt + new tokens)
- logits      rows_mb * S * V * 4 / n (float32 log-softmax of one minibatch's teacher forcing)
- activations per minibatch of rows_mb rows, Korthikanti et al. (arXiv 2205.05198) with a
  16-bit activation dtype scaled by c / 2: without remat  L * S * rows_mb * d * (34 + 5 a S / d)
  * c / 2 / n; with full per-layer remat  S * rows_mb * d * (2 L + 34 + 5 a S / d) * c / 2 / n
  (each layer's input kept, one layer recomputed at a time).

The "remat" column is what per-layer checkpointing (`model.remat=block`) gives by this
formula; scripts/bench_memory.py measures the compiled step instead (docs/memory.md). n = all devices of the mesh (the row split and the parameter
split both use them); a pure data-parallel mesh replicates params/grads/adam instead.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlpt.models.config import PRESETS  # noqa: E402

GIB = 1024 ** 3


def plan(cfg, n: int, prompts: int, G: int, prompt_len: int, new_tokens: int, minibatches: int,
         compute_bytes: int = 2, reference: bool = True) -> dict:
    P, L, d, V = cfg.num_params(), cfg.n_layers, cfg.d_model, cfg.vocab_size
    a, kvh, hd = cfg.n_heads, cfg.n_kv_heads, cfg.hd
    S, rows = prompt_len + new_tokens, prompts * G
    rows_mb = rows / minibatches
    c = compute_bytes
    per_layer = S * rows_mb * d * (34 + 5 * a * S / d) * c / 2
    out = {
        "params": P * 4 / n, "grads": P * 4 / n, "adam": 2 * P * 4 / n,
        "reference": P * c / n if reference else 0.0,
        "kv_cache": rows * S * L * 2 * kvh * hd * c / n,
        "logits": rows_mb * S * V * 4 / n,
        "act_no_remat": L * per_layer / n,
        "act_remat": (2 * L * S * rows_mb * d * c / 2 + per_layer) / n,
    }
    states = out["params"] + out["grads"] + out["adam"] + out["reference"]
    # sampling and the update do not overlap: the peak is the larger of the two phases
    out["total_no_remat"] = states + max(out["kv_cache"], out["logits"] + out["act_no_remat"])
    out["total_remat"] = states + max(out["kv_cache"], out["logits"] + out["act_remat"])
    return out


def table(presets, devices, **kw) -> str:
    cols = ["params", "grads", "adam", "reference", "kv_cache", "logits", "act_no_remat",
            "act_remat", "total_no_remat", "total_remat"]
    lines = ["| model | params | devices | " + " | ".join(c.replace("_", " ") for c in cols)
             + " |", "|---|---:|---:|" + "---:|" * len(cols)]
    for name in presets:
        cfg = PRESETS[name]
        for n in devices:
            p = plan(cfg, n, **kw)
            lines.append(f"| {name} | {cfg.num_params() / 1e9:.2f}B | {n} | "
                         + " | ".join(f"{p[c] / GIB:.2f}" for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-7b")
    ap.add_argument("--devices", default="1,8,16,64")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--prompt_len", type=int, default=256)
    ap.add_argument("--new_tokens", type=int, default=512)
    ap.add_argument("--minibatches", type=int, default=4)
    ap.add_argument("--compute_bytes", type=int, default=2, help="2 = bfloat16, 4 = float32")
    a = ap.parse_args(argv)
    kw = dict(prompts=a.prompts, G=a.G, prompt_len=a.prompt_len, new_tokens=a.new_tokens,
              minibatches=a.minibatches, compute_bytes=a.compute_bytes)
    print(f"GiB per device; {a.prompts} prompts x G={a.G}, prompt {a.prompt_len} + "
          f"{a.new_tokens} new tokens, {a.minibatches} minibatches, compute "
          f"{'bf16' if a.compute_bytes == 2 else 'fp32'}, float32 master weights and Adam\n")
    print(table(a.presets.split(","), [int(x) for x in a.devices.split(",")], **kw))


if __name__ == "__main__":
    main()

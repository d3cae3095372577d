"""What the fused GRPO step's dense work alone costs on this machine under XLA.

    python scripts/bench_floor.py              # W1 and W2 (the workloads of scripts/bench.py)

For each workload it times, as jitted programs, the dense matmuls the fused step must run
(every q/k/v/o/gate/up/down projection and the LM head, with the workload's shapes), chained
layer by layer with one elementwise op standing in for each residual add and SwiGLU:

- the decode loop: T-1 sequential steps on the N = B*G sampled rows (a `lax.fori_loop`);
- the reference forward: the N*T completion rows;
- the policy forward + backward: the gradient with respect to the weights.

Two lines per workload:
- "matmuls only": attention is one elementwise q * [k, v]. There is also no softmax, no
  sampling, no log-probs, no optimizer and no prompt prefill, so this is below what any
  implementation whose matmuls run through XLA can take here.
- "matmuls + XLA attention": attention is JAX's own `jax.nn.dot_product_attention`
  (implementation="xla"; causal over the completion rows, or over a KV cache written at each
  decode step). Not a bound: rlpt's decode attention is faster than it (see docs/speed.md);
  a reference for what attention costs here.

Compare both with the step time a target asks for (TRL's step time / target ratio).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from bench import WORKLOADS, timed  # noqa: E402  (scripts/bench.py: the workloads, the timer)
from rlpt.models import get_model_config  # noqa: E402


def weights(mcfg, key):
    d, f, hd = mcfg.d_model, mcfg.d_ff, mcfg.hd
    shapes = {"q": (d, mcfg.n_heads * hd), "k": (d, mcfg.n_kv_heads * hd),
              "v": (d, mcfg.n_kv_heads * hd), "o": (mcfg.n_heads * hd, d),
              "gate": (d, f), "up": (d, f), "down": (f, d)}
    layers = []
    for _ in range(mcfg.n_layers):
        key, *ks = jax.random.split(key, len(shapes) + 1)
        layers.append({n: 0.05 * jax.random.normal(k, s) for k, (n, s) in zip(ks, shapes.items())})
    return {"layers": layers, "head": 0.05 * jax.random.normal(key, (d, mcfg.vocab_size))}


def model(mcfg, w, x, n_rows, attention, caches=None, t=None):
    """The model's projections on rows x [n_rows * T', d], with one elementwise op standing in
    for each residual add and SwiGLU. Attention: `None` (an elementwise q * [k, v] stand-in)
    or JAX's own `jax.nn.dot_product_attention` (XLA implementation): causal over the rows'
    T' tokens, or, when decoding (T' = 1), over a KV cache the step writes at slot t."""
    H, KVH, hd = mcfg.n_heads, mcfg.n_kv_heads, mcfg.hd
    for i, lw in enumerate(w["layers"]):
        q, k, v = x @ lw["q"], x @ lw["k"], x @ lw["v"]
        if attention is None:
            a = q * jnp.concatenate([k, v], axis=-1)
        else:
            heads = lambda y, n: y.reshape(n_rows, -1, n, hd)
            q, k, v = heads(q, H), heads(k, KVH), heads(v, KVH)
            if caches is not None:
                ck, cv = caches[i]
                k = jax.lax.dynamic_update_slice_in_dim(ck, k, t, axis=1)
                v = jax.lax.dynamic_update_slice_in_dim(cv, v, t, axis=1)
                caches[i] = (k, v)
            a = jax.nn.dot_product_attention(q, k, v, is_causal=caches is None,
                                             implementation="xla").reshape(x.shape[0], -1)
        x = x + a @ lw["o"]
        x = x + ((x @ lw["gate"]) * (x @ lw["up"])) @ lw["down"]
    return x @ w["head"]


def floor(name, attention, reps):
    preset, B, G, T = WORKLOADS[name]
    mcfg = get_model_config(preset)
    assert mcfg.n_heads * mcfg.hd == mcfg.d_model and 2 * mcfg.n_kv_heads == mcfg.n_heads, \
        "the q * [k, v] stand-in assumes n_heads = 2 * n_kv_heads and n_heads * hd = d_model"
    w = weights(mcfg, jax.random.PRNGKey(0))
    N, S = B * G, T + 8  # S: cache slots (about 8 prompt tokens, then the completion)
    x_dec = jnp.ones((N, mcfg.d_model))
    x_all = jnp.ones((N * T, mcfg.d_model))
    cache = jnp.zeros((N, S, mcfg.n_kv_heads, mcfg.hd))

    @jax.jit
    def decode(w, x):
        def step(t, carry):
            x, caches = carry
            caches = list(caches)
            y = model(mcfg, w, x, N, attention, caches, t + 8)
            return x + 1e-3 * y[:, : mcfg.d_model].sum(-1, keepdims=True), tuple(caches)
        return jax.lax.fori_loop(0, T - 1, step, (x, ((cache, cache),) * mcfg.n_layers))[0]

    loss = lambda w, x: model(mcfg, w, x, N, attention).sum()
    return {"decode": timed(decode, w, x_dec, steps=reps),
            "reference": timed(jax.jit(loss), w, x_all, steps=reps),
            "policy": timed(jax.jit(jax.grad(loss)), w, x_all, steps=reps)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    print(f"load average before the run: {os.getloadavg()[0]:.2f}")
    for name in a.workloads.split(","):
        for attention, label in ((None, "matmuls only"), ("xla", "matmuls + XLA attention")):
            r = floor(name, attention, a.reps)
            print(f"{name} {label}: decode loop {r['decode']:.4f} s + reference forward "
                  f"{r['reference']:.4f} s + policy fwd+bwd {r['policy']:.4f} s = "
                  f"{sum(r.values()):.4f} s")


if __name__ == "__main__":
    main()

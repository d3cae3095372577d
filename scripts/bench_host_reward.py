"""What the host boundary costs per RL step, against an on-device reward, on one tiny workload.

    python scripts/bench_host_reward.py                  # tiny model, configs/grpo_arith.py
    python scripts/bench_host_reward.py --steps 30 --size nano --tool 0

Variants (same model, batch, sampler, loss; only the reward path differs):

  (a) device        the task's JAX reward inside the fused step (one XLA program)
  (b) callback      the task's pure-Python reference reward via `host_reward_callback`
                    (`jax.pure_callback` inside the fused step: the device waits for the host)
  (c) split         `make_split_step`: rollout program -> numpy -> Python reward -> update program
  (d) gsm8k-cb      `rlpt.rewards.math_answer.gsm8k_reward` on the decoded strings, via the
                    host callback (a string verifier: answer extraction + number parsing)
  (e) tool-device   tool_multiplication with the calculator in the rollout (`tool_rollout`, the
                    step spec's rollout), device reward (--tool 1; a different, longer workload:
                    24 new tokens)
  (f) tool-cb       the same with its pure-Python reward through the host callback

Each variant: `--warmup` steps (compilation), then `--steps` steps timed one by one with
`jax.block_until_ready`, interleaved across variants (step i of every variant back to back) so
load changes on a shared machine hit all alike. The table gives the median and the 10-90%
range, the median of the per-step differences to (a) (to (e) for (f); paired, so a load change
cancels), and `host fn`: the median time of the Python reward alone on one step's arrays.
"""
import argparse
import os
import sys
import time

import functools

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import grpo_arith, tool_calc  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.envs.tool_rollout import completion_source  # noqa: E402
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.rewards.host_callback import host_reward_callback  # noqa: E402
from rlpt.rewards.math_answer import gsm8k_reward  # noqa: E402
from rlpt.tasks.synthetic_reward import completion_text  # noqa: E402
from rlpt.step import make_fused_step, make_split_step, rollout_phase  # noqa: E402
from rlpt.tokenizers import CharTokenizer  # noqa: E402
from rlpt.build import build_rl, build_task, host_reward_fn, task_reward  # noqa: E402

TOK = CharTokenizer()


def gsm8k_host_fn(tokens, mask, target, target_len):
    """gsm8k_reward(decoded completion, decoded gold answer) per row."""
    out = np.zeros(tokens.shape[0], np.float32)
    for i in range(tokens.shape[0]):
        text, terminated = completion_text(tokens[i], mask[i])
        gold = TOK.decode(target[i][: int(target_len[i])])
        out[i] = gsm8k_reward(text, gold) if terminated else 0.0
    return out


def time_host_fn(fn, arrays, n=10):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(*arrays)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tool", type=int, default=1)
    args = ap.parse_args(argv)

    cfg = validate(grpo_arith.get_config(f"size={args.size}"))
    task = build_task(cfg)
    model_cfg = get_model_config(args.size)
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    n = args.warmup + args.steps
    batches = [task.make_batch(1, s, cfg.rl.batch_size) for s in range(n)]
    host_ref = host_reward_fn(task)
    G = cfg.sampling.num_samples
    print(f"workload: {cfg.task.name} {dict(cfg.task.kwargs)}, model {args.size} "
          f"({model_cfg.num_params():,} params), B={cfg.rl.batch_size} G={G} "
          f"max_new_tokens={cfg.sampling.max_new_tokens}, {jax.devices()[0].platform}; "
          f"median of {args.steps} steps after {args.warmup} warm-up", flush=True)

    def build(c, t, reward):
        """(spec, a fresh state on its own copy of the params: the step donates it, hp)."""
        spec, state, hp, _ = build_rl(c, model_cfg, jax.tree_util.tree_map(jnp.copy, params), t,
                                      reward=reward)
        return spec, state, hp

    def first_rollout(spec, state, hp, batch):
        """One step's rollout arrays, for timing the Python reward functions alone."""
        return jax.device_get(jax.jit(functools.partial(rollout_phase, spec))(state, batch,
                                                                              hp)[1])

    variants = []  # (name, step_fn, state, hp, batches, host_fn, host_arrays)
    spec, state, hp = build(cfg, task, task_reward(task, "device"))
    out = first_rollout(spec, state, hp, batches[0])
    rep = lambda x: np.repeat(x, G, axis=0)
    arrays = (out.tokens, out.mask, rep(batches[0]["target"]), rep(batches[0]["target_len"]))
    variants.append(("(a) device", make_fused_step(spec), state, hp, batches, None, None))
    spec, state, hp = build(cfg, task, task_reward(task, "host"))  # host_reward_callback(host_ref)
    variants.append(("(b) callback", make_fused_step(spec), state, hp, batches, host_ref, arrays))
    spec, state, hp = build(cfg, task, None)  # the reward is host_ref, between two programs
    variants.append(("(c) split", make_split_step(spec, host_ref), state, hp, batches, host_ref,
                     arrays))
    gsm8k_cb = host_reward_callback(gsm8k_host_fn)
    spec, state, hp = build(cfg, task, lambda frozen, *a: gsm8k_cb(*a))
    variants.append(("(d) gsm8k-cb", make_fused_step(spec), state, hp, batches, gsm8k_host_fn,
                     arrays))
    if args.tool:
        tcfg_ = validate(tool_calc.get_config(f"size={args.size}"))
        ttask = build_task(tcfg_)
        tb = [ttask.make_batch(1, s, tcfg_.rl.batch_size) for s in range(n)]
        spec, state, hp = build(tcfg_, ttask, task_reward(ttask, "device"))  # tool rollout
        tout = first_rollout(spec, state, hp, tb[0])
        tG = tcfg_.sampling.num_samples
        targs = (tout.tokens, np.asarray(completion_source(tout)),
                 np.repeat(tb[0]["target"], tG, 0), np.repeat(tb[0]["target_len"], tG, 0))
        variants.append(("(e) tool-device", make_fused_step(spec), state, hp, tb, None, None))
        # the task's host reward (ttask.host_reward) through host_reward_callback
        spec, state, hp = build(tcfg_, ttask, task_reward(ttask, "host"))
        variants.append(("(f) tool-cb", make_fused_step(spec), state, hp, tb, ttask.host_reward,
                         targs))

    # Interleaved: step i of every variant runs back to back, so a change in machine load
    # (the CPU is shared) hits all variants alike.
    states = [v[2] for v in variants]
    times = [[] for _ in variants]
    last = [None] * len(variants)
    for i in range(n):
        for v, (name, step_fn, _, hp, b, _, _) in enumerate(variants):
            t0 = time.perf_counter()
            states[v], m = step_fn(states[v], b[i], hp)
            jax.block_until_ready((states[v], m))
            if i >= args.warmup:
                times[v].append((time.perf_counter() - t0) * 1e3)
            last[v] = m
        if i + 1 == args.warmup:
            print("  compiled; timing", flush=True)
    rows = []
    for v, (name, _, _, _, _, host_fn, host_arrays) in enumerate(variants):
        t = np.asarray(times[v])
        ref = times[[n_[0] for n_ in variants].index("(e) tool-device" if name.startswith("(f)")
                                                     else "(a) device")]
        paired = np.median(t - np.asarray(ref))       # per-step differences, same load
        host = time_host_fn(host_fn, host_arrays) if host_fn else 0.0
        rows.append((name, np.median(t), np.percentile(t, 10), np.percentile(t, 90), paired, host,
                     float(jax.device_get(last[v])["reward_mean"])))

    print("\n| variant | step ms (median) | p10-p90 ms | paired diff vs device ms (median) | "
          "host fn ms | reward_mean |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, med, p10, p90, paired, host, rew in rows:
        delta = "-" if name[:3] in ("(a)", "(e)") else f"{paired:+.1f}"
        print(f"| {name} | {med:.1f} | {p10:.1f}-{p90:.1f} | {delta} | {host:.2f} | {rew:.3f} |")


if __name__ == "__main__":
    main()

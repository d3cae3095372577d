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
  (e) tool-device   tool_multiplication with the calculator in the rollout (ToolRLStep), device
                    reward (--tool 1; a different, longer workload: 24 new tokens)
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

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import grpo_arith, tool_calc  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.envs.tool_rollout import ToolRLStep, completion_source  # noqa: E402
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.rewards.math_answer import gsm8k_reward  # noqa: E402
from rlpt.rewards.synthetic import completion_text  # noqa: E402
from rlpt.rl_step import (RLStep, host_reward_callback, init_state, make_fused_step,  # noqa: E402
                          make_optimizer, make_split_step)
from rlpt.tokenizers import CharTokenizer  # noqa: E402
from rlpt.train import build_task, host_reward_fn  # noqa: E402

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
    opt = make_optimizer(cfg.optim)
    n = args.warmup + args.steps
    batches = [task.make_batch(1, s, cfg.rl.batch_size) for s in range(n)]
    host_ref = host_reward_fn(task)
    G = cfg.sampling.num_samples
    print(f"workload: {cfg.task.name} {dict(cfg.task.kwargs)}, model {args.size} "
          f"({model_cfg.num_params():,} params), B={cfg.rl.batch_size} G={G} "
          f"max_new_tokens={cfg.sampling.max_new_tokens}, {jax.devices()[0].platform}; "
          f"median of {args.steps} steps after {args.warmup} warm-up", flush=True)

    # one step's rollout arrays, for timing the Python reward functions alone
    probe = RLStep(model_cfg, cfg, opt, task.reward)
    out = jax.device_get(jax.jit(probe.rollout)(init_state(params, opt, 0, probe.need_ref),
                                                batches[0]))
    rep = lambda x: np.repeat(x, G, axis=0)
    arrays = (out.tokens, out.mask, rep(batches[0]["target"]), rep(batches[0]["target_len"]))

    variants = []  # (name, rl, step_fn, batches, host_fn, host_arrays)
    rl = RLStep(model_cfg, cfg, opt, task.reward)
    variants.append(("(a) device", rl, make_fused_step(rl), batches, None, None))
    rl = RLStep(model_cfg, cfg, opt, host_reward_callback(host_ref))
    variants.append(("(b) callback", rl, make_fused_step(rl), batches, host_ref, arrays))
    rl = RLStep(model_cfg, cfg, opt, None)
    variants.append(("(c) split", rl, make_split_step(rl, host_ref), batches, host_ref, arrays))
    rl = RLStep(model_cfg, cfg, opt, host_reward_callback(gsm8k_host_fn))
    variants.append(("(d) gsm8k-cb", rl, make_fused_step(rl), batches, gsm8k_host_fn, arrays))
    if args.tool:
        tcfg_ = validate(tool_calc.get_config(f"size={args.size}"))
        from rlpt import registry
        ttask = registry.get("task", tcfg_.task.name)(**tcfg_.task.kwargs.to_dict())
        topt = make_optimizer(tcfg_.optim)
        tb = [ttask.make_batch(1, s, tcfg_.rl.batch_size) for s in range(n)]
        trl = ToolRLStep(model_cfg, tcfg_, topt, ttask.reward)
        tout = jax.device_get(jax.jit(trl.rollout)(init_state(params, topt, 0, False), tb[0]))
        tG = tcfg_.sampling.num_samples
        targs = (tout.tokens, np.asarray(completion_source(tout)),
                 np.repeat(tb[0]["target"], tG, 0), np.repeat(tb[0]["target_len"], tG, 0))
        variants.append(("(e) tool-device", trl, make_fused_step(trl), tb, None, None))
        trl = ToolRLStep(model_cfg, tcfg_, topt, host_reward_callback(ttask.host_reward))
        variants.append(("(f) tool-cb", trl, make_fused_step(trl), tb, ttask.host_reward, targs))

    # Interleaved: step i of every variant runs back to back, so a change in machine load
    # (the CPU is shared) hits all variants alike.
    states = []
    for name, rl, step_fn, b, _, _ in variants:
        fresh = jax.tree_util.tree_map(np.array, params)  # the step donates its state
        states.append(init_state(fresh, rl.optimizer, 0, rl.need_ref))
    times = [[] for _ in variants]
    last = [None] * len(variants)
    for i in range(n):
        for v, (name, rl, step_fn, b, _, _) in enumerate(variants):
            t0 = time.perf_counter()
            states[v], m = step_fn(states[v], b[i])
            jax.block_until_ready((states[v], m))
            if i >= args.warmup:
                times[v].append((time.perf_counter() - t0) * 1e3)
            last[v] = m
        if i + 1 == args.warmup:
            print("  compiled; timing", flush=True)
    rows = []
    for v, (name, rl, step_fn, b, host_fn, host_arrays) in enumerate(variants):
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

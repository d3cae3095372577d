"""Step time and memory of one RL step, PPO vs GRPO, from the SFT model of a finished sweep of
configs/ppo_vs_grpo.py (one run, not vmapped):

    python experiments/ppo_vs_grpo/measure.py runs/ppo_vs_grpo [--steps 20 --rounds 3] [--out DIR]

For each arm it builds the arm's fused RL step (rlpt.step.make_fused_step, exactly what
rlpt.train runs) on seed 0's SFT parameters (the group's stacked checkpoint after SFT, run 0:
both arms' SFT models are identical), then:

* memory: the parameter count (policy, plus PPO's value head), the bytes of parameters +
  optimizer state, and XLA's own memory analysis of the compiled step (argument, output and
  temporary buffer bytes; temporaries are the activations, the KV cache and the gradients);
* time: `--rounds` rounds, in each round every arm runs `--steps` steps from its own state
  (timed with block_until_ready, after one untimed warm-up step per arm), arms interleaved so
  that machine load affects both alike; per arm the median over rounds of seconds per step.
  The steps continue training, so the timed steps are the first RL steps after SFT.

Prints a table and writes measure.md / measure.json next to this file (or --out).
"""
import argparse
import json
import os
import sys
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)   # configs/ppo_vs_grpo.py imports configs.recipes


def load_config_module():
    from rlpt.config import config_file
    return config_file(os.path.join(ROOT, "configs", "ppo_vs_grpo.py"))


def arm_config(m, arm, sweep_dir):
    """The sweep point of `arm`, seed 0, from the sweep's own config.json."""
    from rlpt.config import validate
    from rlpt.sweep.points import points_to_configs
    spec = json.load(open(os.path.join(sweep_dir, "config.json")))
    base = m.get_config("")
    pts = points_to_configs(base, [p for p in spec["points"]
                                   if p.get("config.algo.name") == arm
                                   and p.get("config.seed") == 0])
    cfg = pts[0].cfg
    base_saved = spec["base"]
    for k in ("rl", "sampling", "optim"):   # the sweep ran with these (checked, not assumed)
        for kk, v in base_saved[k].items():
            if isinstance(v, (int, float, str)) and cfg[k][kk] != v:
                raise ValueError(f"{sweep_dir}: config.{k}.{kk}={v} differs from "
                                 f"configs/ppo_vs_grpo.py's default {cfg[k][kk]}")
    return validate(cfg)


def sft_params(cfg, sweep_dir):
    from rlpt.io.checkpoints import Checkpointer
    from rlpt.optim import make_optimizer
    from rlpt.state import new_state
    from rlpt.sweep.run import stack
    from rlpt.build import build_model
    spec = json.load(open(os.path.join(sweep_dir, "config.json")))
    n = sum(1 for p in spec["points"] if p.get("config.algo.name") == "grpo")
    _, params = build_model(cfg)
    opt = make_optimizer(cfg.sft.optim)
    like = stack([new_state(params, opt, s) for s in range(n)])
    state = Checkpointer(os.path.join(sweep_dir, "groups", "g000"), "sft").restore(like)
    return jax.tree_util.tree_map(lambda x: jax.numpy.asarray(x[0]), state.params)


def n_params(tree):
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def n_bytes(tree):
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep_dir")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    from rlpt.step import make_fused_step
    from rlpt.build import build_model, build_rl, build_task
    m = load_config_module()
    arms = ("grpo", "ppo")
    cfgs = {arm: arm_config(m, arm, a.sweep_dir) for arm in arms}
    params0 = sft_params(cfgs["grpo"], a.sweep_dir)
    task = build_task(cfgs["grpo"])
    model_cfg, _ = build_model(cfgs["grpo"])
    run = {}
    for arm in arms:
        own = jax.tree_util.tree_map(jax.numpy.copy, params0)  # the step donates its state
        spec, state, hp, make_batch = build_rl(cfgs[arm], model_cfg, own, task)
        step = make_fused_step(spec, donate=True)
        b0 = make_batch(0)
        compiled = step.lower(state, b0, hp).compile()
        mem = compiled.memory_analysis()
        policy = {k: v for k, v in state.params.items() if k != "value_head"}
        run[arm] = dict(step=step, state=state, hp=hp, make_batch=make_batch, next=0, times=[],
                        info={"params_policy": n_params(policy),
                              "params_value_head": n_params(state.params.get("value_head", {})),
                              "param_and_opt_state_bytes": n_bytes((state.params,
                                                                    state.opt_state)),
                              "xla_argument_bytes": int(mem.argument_size_in_bytes),
                              "xla_output_bytes": int(mem.output_size_in_bytes),
                              "xla_temp_bytes": int(mem.temp_size_in_bytes)})
    for arm in arms:  # warm-up (compiles the jitted step) and one untimed step
        r = run[arm]
        r["state"], mt = r["step"](r["state"], r["make_batch"](r["next"]), r["hp"])
        jax.block_until_ready(mt)
        r["next"] += 1
    for rnd in range(a.rounds):
        for arm in arms:
            r = run[arm]
            batches = [r["make_batch"](r["next"] + i) for i in range(a.steps)]
            t0 = time.perf_counter()
            for b in batches:
                r["state"], mt = r["step"](r["state"], b, r["hp"])
            jax.block_until_ready((r["state"], mt))
            r["times"].append((time.perf_counter() - t0) / a.steps)
            r["next"] += a.steps
            r["last_len"] = float(mt["response_len"])
    load = os.getloadavg()[0]
    lines = [f"One run (seed 0's SFT model), fused RL step of configs/ppo_vs_grpo.py, "
             f"{a.rounds} rounds x {a.steps} steps per arm, interleaved; load average "
             f"{load:.2f}.", "",
             "| arm | policy params | value-head params | params + Adam state (bytes) | "
             "XLA argument bytes | XLA temp bytes | seconds per step, per round | median s/step |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    out = {"load_average": load, "steps": a.steps, "rounds": a.rounds}
    for arm in arms:
        i, t = run[arm]["info"], run[arm]["times"]
        out[arm] = dict(i, seconds_per_step=t, median_seconds_per_step=float(np.median(t)))
        lines.append(f"| {arm} | {i['params_policy']:,} | {i['params_value_head']:,} | "
                     f"{i['param_and_opt_state_bytes']:,} | {i['xla_argument_bytes']:,} | "
                     f"{i['xla_temp_bytes']:,} | {', '.join(f'{x:.3f}' for x in t)} | "
                     f"{np.median(t):.3f} |")
    ratio = out["ppo"]["median_seconds_per_step"] / out["grpo"]["median_seconds_per_step"]
    tr = out["ppo"]["xla_temp_bytes"] / out["grpo"]["xla_temp_bytes"]
    out["ppo_over_grpo_time"], out["ppo_over_grpo_temp_bytes"] = ratio, tr
    lines += ["", f"PPO / GRPO: time per step {ratio:.2f}x, XLA temporary bytes {tr:.2f}x."]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, "measure.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "measure.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

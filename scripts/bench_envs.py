"""What a Python environment costs against the fully compiled path, on the same task and policy.

    python scripts/bench_envs.py [--prompts 16 --samples 8 --reps 5 --sft_steps 300]

Task: tool_multiplication (3-digit x 2-digit products, rlpt.tasks.tool_task) with a tiny model
SFT-trained on calculator demos that always call (`[123*45]<5535>5535`), so its rollouts call
the tool. The same B x G episodes are rolled out two ways:

- **device**: the environment's compiled protocol (`env.compiled`, the calculator inside the
  decode loop, rlpt.envs.tool_rollout): one compiled program, the call evaluated in JAX;
- **python**: the same environment's Python protocol (`task.calculator_environment`,
  rlpt.envs.calculator_env) played by rlpt.envs.multiturn.EnvRunner: a policy turn ends at `]`
  (or eos), `env_response` evaluates the call body with the calculator's Python reference
  (`rlpt.envs.calculator.reference_eval`) and replies `<5535>`, the policy continues the same
  KV cache; at most 3 policy turns (the device path's max_calls=2 + the answer).

Printed per path: the median rollout wall time over --reps (after a compiling call), accuracy
(the answer after the last call equals the product: a check that both paths play the same game),
and for the Python path the host's milliseconds per policy turn (env_response, decoding and
rendering between device programs) and `host_frac`, the share of the rollout's wall time the
device waits on the host. Last, the compiled update's time on the same batch (the step's other
part), and each path's rollout share of rollout + update. The load average is printed before and
after: a figure taken under load is not a result.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs.tool_calc import get_config  # noqa: E402
from rlpt.build import build_model, build_rl, build_sft, build_task  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.envs.environment import PlainChat  # noqa: E402
from rlpt.envs.multiturn import EnvRunner  # noqa: E402
from rlpt.envs.tool_rollout import ToolConfig  # noqa: E402
from rlpt.sampling import SamplingConfig  # noqa: E402
from rlpt.state import trained_params  # noqa: E402
from rlpt.step import update_phase  # noqa: E402


def sft_policy(cfg, steps):
    task = build_task(cfg)
    model_cfg, params = build_model(cfg)
    step, state, hp, make_batch = build_sft(cfg, model_cfg, params, task)
    step = jax.jit(step, donate_argnums=(0,))
    for i in range(steps):
        state, _ = step(state, make_batch(i), hp)
    return task, model_cfg, trained_params(state, model_cfg.lora_scale)


def median_time(fn, reps):
    fn()   # compile
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sft_steps", type=int, default=300)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    cfg = validate(get_config("size=tiny,call_fraction=1.0"))
    task, model_cfg, params = sft_policy(cfg, a.sft_steps)
    tok = task.tokenizer
    batch = task.make_batch(123, 0, a.prompts)
    B, G = a.prompts, a.samples
    rng = jax.random.PRNGKey(0)

    # device: the calculator inside the decode loop
    scfg = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, num_samples=G,
                          stop_tokens=(tok.eos_id,), pad_id=tok.pad_id)
    env = task.calculator_environment(ToolConfig(max_calls=2, max_call_len=24), batch)
    dev = jax.jit(lambda p, r: env.compiled.sample(model_cfg, p, batch, r, scfg))
    t_dev, out = median_time(lambda: dev(params, rng), a.reps)
    r_dev = task.host_reward(*jax.device_get((out.tokens, (out.valid + out.tool_mask)
                                              .astype(np.int32))),
                             np.repeat(batch["target"], G, 0), np.repeat(batch["target_len"], G))

    # python: the same environment's Python protocol between device programs
    turn_tokens, max_reply = cfg.sampling.max_new_tokens, 16
    scfg_py = SamplingConfig(max_new_tokens=3 * turn_tokens + 2 * max_reply, num_samples=G,
                             stop_tokens=(tok.eos_id, tok.stoi["]"]), pad_id=tok.pad_id)
    runner = EnvRunner(env, PlainChat(tok), model_cfg, scfg_py, turn_tokens, max_reply)
    pbatch = {"prompt": batch["prompt"], "prompt_mask": batch["prompt_mask"],
              "row": np.arange(B)}
    t_py, (out_py, eps, m) = median_time(lambda: runner.rollout(params, pbatch, rng), a.reps)
    r_py, _ = env.rubric.score(eps, G)

    # the update on the device path's batch (what the rest of the step costs)
    spec, state, hp, _ = build_rl(cfg, model_cfg, params, task)
    upd = jax.jit(lambda s, o, r: update_phase(spec, s, batch, o, r, hp))
    t_upd, _ = median_time(lambda: upd(state, out, jax.numpy.asarray(r_dev)), a.reps)

    print(f"\n{B} prompts x G={G} episodes, tiny model ({model_cfg.num_params():,} params), "
          f"median of {a.reps}")
    print("| path | rollout ms | accuracy | policy turns/episode | host ms/turn | host_frac | "
          "rollout share of rollout+update |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    calls = float(np.mean(np.asarray(out.num_calls)))
    print(f"| device (calculator in the decode loop) | {1e3 * t_dev:.1f} | {np.mean(r_dev):.3f} "
          f"| {1 + calls:.2f} | - | - | {t_dev / (t_dev + t_upd):.2f} |")
    print(f"| python (env_response between programs) | {1e3 * t_py:.1f} | "
          f"{np.mean(r_py):.3f} | {m['env/turns']:.2f} | {m['env/host_ms_per_turn']:.3f} | "
          f"{m['env/host_frac']:.3f} | {t_py / (t_py + t_upd):.2f} |")
    print(f"update (compiled, same batch): {1e3 * t_upd:.1f} ms; python / device rollout: "
          f"{t_py / t_dev:.2f}x")
    print(f"decode columns: device {scfg.max_new_tokens} at most (one per token, tool tokens "
          f"included); python {m['env/columns']:.0f} (turns padded to the batch's longest, "
          f"replies to a {runner.buckets[0]}+ bucket)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""SFT warm-up, then GRPO with the on-device calculator in the rollout; before/after table.

    python scripts/tool_calc_rl.py --config=size=tiny,seed=0
    python scripts/tool_calc_rl.py --config=quick=1            # seconds-long smoke version

Everything per RL iteration is one jitted program (`ToolRLStep.fused`: tool rollout, reward,
advantages, loss, update). Evaluation: the held-out set (`task.eval_set`), greedy and sampled at
the training temperature (eval.n_samples per prompt), reporting call rate, accuracy, and
accuracy split by whether the sample called the tool.
"""
import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import tool_calc  # noqa: E402
from rlpt import registry  # noqa: E402
from rlpt.config import validate  # noqa: E402
from rlpt.envs.tool_rollout import (ToolConfig, ToolRLStep, make_tool_eval,  # noqa: E402
                                    make_tool_sft_step)
from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.rl_step import init_state, make_fused_step, make_optimizer  # noqa: E402
from rlpt.sampling import SamplingConfig  # noqa: E402

COLS = ("call_rate", "accuracy", "call_success", "acc_called", "acc_direct")


def evaluate(model_cfg, params, task, cfg, tcfg, eval_batch):
    s = cfg.sampling
    res = {}
    for name, scfg in (
            ("greedy", SamplingConfig(max_new_tokens=s.max_new_tokens, greedy=True,
                                      stop_tokens=tuple(s.stop_tokens))),
            ("sampled", SamplingConfig(max_new_tokens=s.max_new_tokens,
                                       num_samples=cfg.eval.n_samples, temperature=s.temperature,
                                       stop_tokens=tuple(s.stop_tokens)))):
        m = make_tool_eval(model_cfg, task.reward, scfg, tcfg)(
            params, eval_batch, jax.random.PRNGKey(cfg.seed + 777))
        res[name] = {k: float(v) for k, v in jax.device_get(m).items()}
    return res


def table(rows):
    head = "| checkpoint | decoding | " + " | ".join(COLS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(COLS)]
    for name, res in rows:
        for dec in ("greedy", "sampled"):
            lines.append(f"| {name} | {dec} | " + " | ".join(f"{res[dec][k]:.3f}" for k in COLS)
                         + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="", help="k=v,... arguments of configs/tool_calc.py")
    args = ap.parse_args(argv)
    cfg = validate(tool_calc.get_config(args.config))
    task = registry.get("task", cfg.task.name)(**cfg.task.kwargs.to_dict())
    tcfg = ToolConfig.from_config(cfg.tool)
    model_cfg = get_model_config(cfg.model.preset, dtype=cfg.model.dtype)
    params = init_params(model_cfg, jax.random.PRNGKey(cfg.seed))
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    print(f"model {model_cfg.num_params():,} params; task {task.name} {dict(cfg.task.kwargs)}; "
          f"tool {tcfg}; devices {jax.devices()}")

    t0 = time.time()
    opt = make_optimizer(cfg.sft.optim)
    state = init_state(params, opt, cfg.seed, with_ref=False)
    sft_step = make_tool_sft_step(model_cfg, opt)
    for step in range(cfg.sft.steps):
        state, m = sft_step(state, task.make_batch(cfg.seed, step, cfg.sft.batch_size))
        if (step + 1) % 100 == 0 or step + 1 == cfg.sft.steps:
            print(f"sft {step + 1:4d} loss {float(m['loss']):.3f}", flush=True)
    t_sft = time.time() - t0
    before = evaluate(model_cfg, state.params, task, cfg, tcfg, eval_batch)

    t0 = time.time()
    opt = make_optimizer(cfg.optim)
    rl = ToolRLStep(model_cfg, cfg, opt, task.reward, tcfg)
    state = init_state(state.params, opt, cfg.seed, with_ref=rl.need_ref)
    step_fn = make_fused_step(rl)
    for step in range(cfg.rl.steps):
        state, m = step_fn(state, task.make_batch(cfg.seed + 1, step, cfg.rl.batch_size))
        if (step + 1) % 10 == 0 or step + 1 == cfg.rl.steps:
            m = jax.device_get(m)
            print(f"rl {step + 1:4d} reward {m['reward_mean']:.3f} acc {m['accuracy']:.3f} "
                  f"call_rate {m['call_rate']:.3f} call_success {m['call_success']:.3f} "
                  f"loss {m['loss']:.4f}", flush=True)
    t_rl = time.time() - t0
    after = evaluate(model_cfg, state.params, task, cfg, tcfg, eval_batch)
    print(f"\nsft {cfg.sft.steps} steps {t_sft:.1f}s; rl {cfg.rl.steps} steps {t_rl:.1f}s; "
          f"eval on {cfg.eval.n_prompts} held-out prompts (sampled: {cfg.eval.n_samples} per "
          f"prompt at T={cfg.sampling.temperature})\n")
    print(table([("after SFT", before), ("after RL", after)]))
    return before, after


if __name__ == "__main__":
    np.set_printoptions(linewidth=120)
    main()

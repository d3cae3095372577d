"""A config's fused RL step lowered and compiled from shapes alone: no weight is read or allocated
(the state's shapes come from `jax.eval_shape` over the trainer's own builders), so a config meant
for a GPU validates and compiles on a laptop CPU, and the compiled program's memory (XLA's buffer
assignment for this backend) is known before a run.

    python -m rlpt.shapes --config=configs/qwen_rlvr.py --workdir=runs/qwen_shapes

The model has `model.preset`'s shapes (a checkpoint is not read: the preset names its
architecture), the prompts are `PROMPT_WIDTH` tokens wide, the reward is zero (it adds [N]
buffers, nothing else), the mesh is `cfg.mesh` over this process's devices with the trainer's
parameter and batch shardings. Prints the memory and writes `workdir/shapes.json`. On XLA:CPU
`model.remat` saves memory only with `XLA_FLAGS=--xla_disable_hlo_passes=cse_barrier_expander`
set before Python starts (docs/memory.md).
"""
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlpt import sharding
from rlpt.build import build_rl, with_memory_options
from rlpt.config import validate
from rlpt.models import get_model_config, init_params
from rlpt.state import TrainState
from rlpt.step import fused_step

PROMPT_WIDTH = 256
GB = 1e9


def zero_reward(frozen, tokens, mask, target, target_len):
    return jnp.zeros(tokens.shape[0], jnp.float32), {}


class PromptTask:
    """A fixed prompt batch as a task (`make_batch(seed, step, n)`: the same rows every step)."""

    def __init__(self, prompt, prompt_mask):
        n = prompt.shape[0]
        self.batch = {"prompt": prompt, "prompt_mask": prompt_mask,
                      "target": np.zeros((n, 4), np.int32), "target_len": np.full(n, 3, np.int32)}

    def make_batch(self, seed, step, n):
        return self.batch


def memory_of(compiled) -> dict:
    """Bytes of a compiled program: temp (what it allocates while running), argument (the state
    and the batch), output, total = temp + argument."""
    m = compiled.memory_analysis()
    return {"temp": m.temp_size_in_bytes, "argument": m.argument_size_in_bytes,
            "output": m.output_size_in_bytes,
            "total": m.temp_size_in_bytes + m.argument_size_in_bytes}


def compile_from_shapes(cfg, mesh, prompt_width: int = PROMPT_WIDTH):
    """The fused RL step of the validated config `cfg` (the preset's shapes, rl.batch_size
    prompts of `prompt_width` tokens) lowered and compiled on `mesh` with the trainer's
    shardings, from shapes alone. -> the compiled program."""
    model_cfg = with_memory_options(cfg, get_model_config(cfg.model.preset,
                                                          dtype=cfg.model.dtype))
    params = jax.eval_shape(functools.partial(init_params, model_cfg), jax.random.PRNGKey(0))
    B, P = cfg.rl.batch_size, prompt_width
    task = PromptTask(np.zeros((B, P), np.int32), np.ones((B, P), np.int32))
    built = {}

    def state_of(p):
        spec, state, hp, _ = build_rl(cfg, model_cfg, p, task, reward=zero_reward)
        built.update(spec=spec, hp=hp)
        return state
    state = jax.eval_shape(state_of, params)
    spec, hp = built["spec"], built["hp"]
    prompt = jax.ShapeDtypeStruct((B, P), jnp.int32)
    batch = {"prompt": prompt, "prompt_mask": prompt,
             "target": jax.ShapeDtypeStruct((B, 4), jnp.int32),
             "target_len": jax.ShapeDtypeStruct((B,), jnp.int32)}
    rep = sharding.replicated(mesh)
    state_sh = TrainState(params=sharding.param_shardings(state.params, mesh),
                          opt_state=sharding.param_shardings(state.opt_state, mesh),
                          frozen=sharding.param_shardings(state.frozen, mesh),
                          algo_state=None if state.algo_state is None else rep, step=rep, rng=rep)
    batch_sh = {k: sharding.batch_sharding(mesh, len(v.shape), v.shape[0]) for k, v in
                batch.items()}
    step = jax.jit(functools.partial(fused_step, spec), in_shardings=(state_sh, batch_sh, rep),
                   out_shardings=(state_sh, rep), donate_argnums=(0,))
    return step.lower(state, batch, hp).compile()


def run(cfg, workdir: str) -> dict:
    """`python -m rlpt.shapes`: validate, compile from shapes, print and write shapes.json."""
    cfg = validate(cfg)
    mesh = sharding.make_mesh(dict(cfg.mesh))
    t0 = time.perf_counter()
    mem = memory_of(compile_from_shapes(cfg, mesh))
    seconds = time.perf_counter() - t0
    out = dict(mem, preset=cfg.model.preset, devices=int(mesh.devices.size),
               backend=jax.default_backend(), new_tokens=cfg.sampling.max_new_tokens,
               prompts=cfg.rl.batch_size, samples=cfg.sampling.num_samples,
               prompt_width=PROMPT_WIDTH, compile_seconds=round(seconds, 1))
    size = lambda b: f"{b / GB:.2f} GB" if b >= 0.01 * GB else f"{b / 1e6:.1f} MB"
    print(f"rlpt.shapes: {cfg.model.preset}, {cfg.rl.batch_size} prompts x "
          f"{cfg.sampling.num_samples} samples x {cfg.sampling.max_new_tokens} new tokens on "
          f"{out['devices']} {out['backend']} device(s): temp {size(mem['temp'])} + arguments "
          f"{size(mem['argument'])} = {size(mem['total'])} per device (XLA's buffer assignment "
          f"for this backend; compiled in {seconds:.0f} s)", flush=True)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "shapes.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


def main(argv=None):
    from rlpt.io.cli import cli_main
    cli_main(lambda cfg, workdir, **_: run(cfg, workdir), argv, prog="rlpt.shapes")


if __name__ == "__main__":
    main()

"""Cost of the non-finite guard of rlpt.optim.apply_update on a 25M-float parameter tree: the
plain optax update, a jnp.where guard over parameters and moments, and apply_update (lax.cond),
medians of 8 interleaved rounds in one invocation.

    python scripts/bench_guard.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from rlpt.optim import make_optimizer, optim_hparams, apply_update  # noqa: E402
from rlpt.config import optim_config  # noqa: E402
o = optim_config(1e-4); opt = make_optimizer(o); hp = optim_hparams(o)
params = {f"w{i}": jnp.ones((1024, 1024), jnp.float32) for i in range(24)}  # 25M floats
grads = jax.tree_util.tree_map(lambda x: x * 1e-3, params)
st = opt.init(params)
def plain(p, s, g):
    u, s = opt.update(g, s, p, hp); return optax.apply_updates(p, u), s
def where_guard(p, s, g):
    u, ns = opt.update(g, s, p, hp)
    fin = jnp.isfinite(optax.tree.norm(g)) & jnp.isfinite(optax.tree.norm(u))
    keep = lambda n, o_: jax.tree_util.tree_map(lambda a, b: jnp.where(fin, a, b), n, o_)
    return keep(optax.apply_updates(p, u), p), keep(ns, s)
def cond_guard(p, s, g):
    return apply_update(opt, jnp.float32(1.0), g, s, p, hp)[:2]
fns = {k: jax.jit(f, donate_argnums=(0, 1)) for k, f in [("plain", plain), ("where", where_guard), ("cond", cond_guard)]}
ts = {k: [] for k in fns}
state = {k: (jax.tree_util.tree_map(jnp.copy, params), jax.tree_util.tree_map(jnp.copy, st)) for k in fns}
for k, f in fns.items():
    p, s = f(*state[k], grads); jax.block_until_ready(p); state[k] = (p, s)
for r in range(8):
    for k, f in fns.items():
        t = time.perf_counter(); p, s = f(*state[k], grads); jax.block_until_ready(p); ts[k].append(time.perf_counter() - t); state[k] = (p, s)

print("load", os.getloadavg()[0], {k: round(float(np.median(v)), 4) for k, v in ts.items()})

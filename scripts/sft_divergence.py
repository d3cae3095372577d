"""Why seed 0's greedy accuracy after SFT differs between `rlpt.train` and `rlpt.sweep`
(docs/sweeps.md, "Why a seed's numbers differ between rlpt.train and a sweep").

The SFT phase of configs/grpo_arith.py (seed 0, tiny preset, 500 steps of 64, lr 1e-3), built
with the code each CLI runs, one way per process:

  train  rlpt.train.run_sft's pieces: rlpt.build.build_sft on the config's mesh,
         jax.jit(step, donate_argnums=0), sharding.shard_batch(make_batch(i), mesh)
  R1     rlpt.sweep.run.sft_phase for a group of one point (seed 0): jit(vmap(step))
  R5     the README's sweep, configs/grpo_arith.py:seeds=5,lrs=5e-4 (seeds 0..4), run 0
  R6     seeds=6,lrs=5e-4 (seeds 0..5), run 0
  R6d    the default sweep, configs/grpo_arith.py (3 seeds x lrs 5e-4/1e-3: seed 0 is run 0
         and run 3 of one 6-run program)

each evaluated after SFT as its CLI does (train: rlpt.build.build_rl's state params through
rlpt.evaluation.rollout.evaluate; a group: rlpt.sweep.run.rl_phase + make_group_eval, run 0),
and crossed (each way's params through the other evaluation program).

    python scripts/sft_divergence.py --part=inputs   # init params, opt state, rng, 500 batches,
                                                     # hp, eval set and eval rng: bitwise?
    python scripts/sft_divergence.py --part=step1    # step 1: logits, loss, every grad leaf;
                                                     # forward intermediates (R6)
    python scripts/sft_divergence.py --part=ops      # single ops at the step's shapes, R=1,2,5,6
    for w in train R1 R5 R6 R6d; do python scripts/sft_divergence.py --part=run --way=$w; done
    python scripts/sft_divergence.py --part=run --way=train --tag=_again   # determinism
    python scripts/sft_divergence.py --part=compare  # every run against train, step by step
    python scripts/sft_divergence.py --part=perturb --n=6 --perturb_seed=1234   # train path,
    python scripts/sft_divergence.py --part=perturb --n=7 --perturb_seed=1      # 1-ulp inits

Each part prints its report and writes /tmp/sft_divergence/<part>.json (`run`: run_<way>.npz
with seed 0's params after steps 1..50 and every 10th, and run_<way>.json). On the 2-core CPU
each command takes 0.5-3.5 minutes.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from rlpt import sharding  # noqa: E402
from rlpt.build import build_model, build_rl, build_sft, build_task  # noqa: E402
from rlpt.config import config_file, validate  # noqa: E402
from rlpt.evaluation.rollout import eval_rng, evaluate  # noqa: E402
from rlpt.models.transformer import forward  # noqa: E402
from rlpt.step import sft_loss_and_grads  # noqa: E402
from rlpt.sweep.points import points_to_configs  # noqa: E402
from rlpt.sweep.run import make_group_eval, rl_phase, run_mesh, sft_phase, stack  # noqa: E402

CONFIG = "configs/grpo_arith.py"
OUT = "/tmp/sft_divergence"
# way -> the config-file argument of its sweep (None: rlpt.train of seed 0)
WAYS = {"train": None, "R1": "seeds=1,lrs=5e-4", "R5": "seeds=5,lrs=5e-4",
        "R6": "seeds=6,lrs=5e-4", "R6d": ""}


def train_config():
    """What `python -m rlpt.train --config=configs/grpo_arith.py` runs (validated)."""
    return validate(config_file(CONFIG).get_config(""))


def sweep_points(arg):
    """The points `python -m rlpt.sweep --config=configs/grpo_arith.py:<arg>` runs."""
    mod = config_file(CONFIG)
    return points_to_configs(mod.get_config(arg), mod.get_sweep(arg))


class TrainWay:
    """rlpt.train.run_sft's computation, without logs and checkpoints."""

    def __init__(self, cfg, task, params=None):
        model_cfg, p0 = build_model(cfg)
        self.cfg, self.task, self.model_cfg = cfg, task, model_cfg
        self.params0 = p0 if params is None else params
        self.mesh = sharding.make_mesh(dict(cfg.mesh))
        step, self.state, self.hp, self.make_batch = build_sft(cfg, model_cfg, self.params0, task,
                                                               self.mesh)
        self.step_fn = jax.jit(step, donate_argnums=(0,))
        self.batch_host = None

    def step(self, i):
        self.batch_host = self.make_batch(i)
        self.state, m = self.step_fn(self.state, sharding.shard_batch(self.batch_host, self.mesh),
                                      self.hp)
        return m

    def params(self):
        return jax.device_get(self.state.params)

    def evaluate(self, params, eval_batch):
        """As rlpt.train: the RL state's params (build_rl) through evaluate()."""
        _, st, _, _ = build_rl(self.cfg, self.model_cfg, params, self.task, self.mesh)
        return evaluate(self.model_cfg, st.params, self.task, self.cfg, eval_batch)


class GroupWay:
    """rlpt.sweep.run._sft's computation for the points of one group, without logs."""

    def __init__(self, pts, task):
        self.pts, self.task, self.R = pts, task, len(pts)
        built = [build_model(p.cfg) for p in pts]          # as run_group
        self.model_cfg, self.params0 = built[0][0], [b[1] for b in built]
        self.sh = NamedSharding(run_mesh(self.R), PartitionSpec("run"))
        self.step_fn, self.state, self.batch_of = sft_phase(pts, task, self.model_cfg,
                                                            self.params0, self.sh)
        self.batch_dev = None

    def step(self, i):
        self.batch_dev = self.batch_of(i)
        self.state, m = self.step_fn(self.state, self.batch_dev)
        return m

    def params(self):
        return jax.device_get(self.state.params)

    def evaluate(self, params_list, eval_batch):
        """As rlpt.sweep.run._rl: the RL state's stacked params through make_group_eval."""
        _, st, _ = rl_phase(self.pts, self.task, self.model_cfg, params_list, self.sh)
        fn = make_group_eval(self.model_cfg, self.task, self.pts[0].cfg)
        return fn(st.params, [p.seed for p in self.pts], eval_batch)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def tree_equal(a, b):
    la, lb = leaves(a), leaves(b)
    return len(la) == len(lb) and all(x.dtype == y.dtype and x.shape == y.shape and
                                      np.array_equal(x, y) for x, y in zip(la, lb))


def maxdiff(a, b):
    """(max abs diff over all leaves, that / max |a|, number of differing elements)."""
    la, lb = leaves(a), leaves(b)
    d = max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(la, lb))
    scale = max(float(np.max(np.abs(x))) for x in la)
    n = sum(int(np.sum(x != y)) for x, y in zip(la, lb))
    return d, d / scale, n


def row(tree, i):
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)


def names_of(tree):
    return [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def groups(task):
    return {w: GroupWay(sweep_points(a), task) for w, a in WAYS.items() if a is not None}


def dump(part, res):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, part + ".json"), "w") as f:
        json.dump(res, f, indent=1, default=float)
    print(f"-> {OUT}/{part}.json")


# ------------------------------------------------------------------------------------------
def part_inputs(args):
    cfg = train_config()
    task = build_task(cfg)
    tr = TrainWay(cfg, task)
    gs = groups(task)
    res = {}
    for w, g in gs.items():
        idx = [i for i, p in enumerate(g.pts) if p.seed == 0]
        st = jax.device_get(g.state)
        st_tr = jax.device_get(tr.state)
        r = {"runs": [p.name for p in g.pts], "seed0_runs": idx,
             "sft_cfg_equal": [g.pts[i].cfg.sft.to_dict() == cfg.sft.to_dict() for i in idx],
             "model_cfg_equal": g.model_cfg == tr.model_cfg,
             "init_params_bitwise": [tree_equal(row(st.params, i), st_tr.params) for i in idx],
             "init_opt_state_bitwise": [tree_equal(row(st.opt_state, i), st_tr.opt_state)
                                        for i in idx],
             "rng_bitwise": [tree_equal(row(st.rng, i), st_tr.rng) for i in idx],
             "step_bitwise": [tree_equal(row(st.step, i), st_tr.step) for i in idx]}
        # every step's batch, bitwise (host arrays, dtypes included)
        bad = []
        for s in range(args.steps):
            a = tr.make_batch(s)
            b = jax.device_get(g.batch_of(s))
            for i in idx:
                if not tree_equal(a, row(b, i)):
                    bad.append((s, i))
        r["batches_checked"] = args.steps
        r["batches_differing"] = bad[:10]
        res[w] = r
        print(w, r)
    # hp of the SFT step: train's dict vs a group's stacked hp (through sft_phase's closure)
    from rlpt.optim import optim_hparams
    res["hp_train"] = {k: float(v) for k, v in optim_hparams(cfg.sft.optim).items()}
    for w, g in gs.items():
        res["hp_" + w] = [{k: float(v) for k, v in optim_hparams(p.cfg.sft.optim).items()}
                          for p in g.pts]
    # evaluation inputs: eval set (train: task.eval_set(cfg.eval.n_prompts); sweep: the same
    # call with pts[0].cfg) and each run's eval rng (train: eval_rng(cfg.seed); sweep:
    # eval_rng(p.seed) stacked)
    ev_tr = task.eval_set(cfg.eval.n_prompts)
    for w, g in gs.items():
        ev = g.task.eval_set(g.pts[0].cfg.eval.n_prompts)
        res["eval_" + w] = {
            "eval_batch_bitwise": tree_equal(ev, ev_tr),
            "eval_cfg_equal": g.pts[0].cfg.eval.to_dict() == cfg.eval.to_dict() and
            g.pts[0].cfg.sampling.to_dict() == cfg.sampling.to_dict(),
            "eval_rng_seed0_bitwise": all(
                tree_equal(eval_rng(p.seed), eval_rng(cfg.seed)) for p in g.pts if p.seed == 0)}
        print("eval", w, res["eval_" + w])
    print("hp train", res["hp_train"])
    for w in gs:
        print("hp", w, res["hp_" + w])
    dump("inputs", res)


# ------------------------------------------------------------------------------------------
def part_step1(args):
    """Step 1 (from the identical initial state and batch 0): the forward logits, the loss and
    every gradient leaf, computed by jit (train) and jit(vmap) with R = 1, 5, 6 (run 0)."""
    cfg = train_config()
    task = build_task(cfg)
    tr = TrainWay(cfg, task)
    mc = tr.model_cfg
    b0 = tr.make_batch(0)
    P = b0["prompt"].shape[1]
    tokens = np.concatenate([b0["prompt"], b0["solution"]], axis=1)
    valid = np.concatenate([b0["prompt_mask"], b0["solution_mask"]], axis=1).astype(bool)

    def fwd(p, t, v):
        return forward(mc, p, t, v)

    def lg(p, b):
        (loss, m), g = sft_loss_and_grads(mc, p, b)
        return loss, g

    f1 = jax.jit(fwd)
    fv = jax.jit(jax.vmap(fwd))
    g1 = jax.jit(lg)
    gv = jax.jit(jax.vmap(lg))
    p0 = tr.params0
    logits_tr = np.asarray(f1(p0, tokens, valid))
    loss_tr, grads_tr = jax.device_get(g1(p0, b0))
    res = {"P": P, "tokens_shape": list(tokens.shape)}
    names = names_of(grads_tr)
    print(f"loss train {float(loss_tr)!r}")
    for w, a in WAYS.items():
        if a is None:
            continue
        pts = sweep_points(a)
        ps = [build_model(p.cfg)[1] for p in pts]
        bs = [build_sft(p.cfg, mc, pp, task)[3](0) for p, pp in zip(pts, ps)]
        toks = np.stack([np.concatenate([b["prompt"], b["solution"]], 1) for b in bs])
        vals = np.stack([np.concatenate([b["prompt_mask"], b["solution_mask"]], 1) for b in bs]
                        ).astype(bool)
        lv = np.asarray(fv(stack(ps), toks, vals))[0]
        loss_v, grads_v = jax.device_get(gv(stack(ps), stack(bs)))
        gd = [(n, float(np.max(np.abs(x - y))), float(np.max(np.abs(x))), int(np.sum(x != y)),
               x.size) for n, x, y in zip(names, leaves(grads_tr), leaves(row(grads_v, 0)))]
        r = {"logits_maxabs": float(np.max(np.abs(lv - logits_tr))),
             "logits_n_differ": int(np.sum(lv != logits_tr)), "logits_size": int(lv.size),
             "loss": float(loss_v[0]), "loss_train": float(loss_tr),
             "loss_diff": float(loss_v[0] - loss_tr),
             "grads": gd}
        res[w] = r
        print(f"{w}: logits max|diff| {r['logits_maxabs']:.3g} ({r['logits_n_differ']} of "
              f"{r['logits_size']} differ); loss {r['loss']!r} (diff {r['loss_diff']:.3g})")
        for n, d, s, k, size in gd:
            if k:
                print(f"   grad {n}: max|diff| {d:.3g} (max|g| {s:.3g}), {k}/{size} differ")
        if not any(k for _, _, _, k, _ in gd):
            print("   every gradient leaf bitwise equal")
    # which reduction: the logits' pieces along the forward (hidden states per layer)
    if args.localise:
        res["localise"] = localise(mc, p0, tokens, valid, task)
    dump("step1", res)


def localise(mc, p0, tokens, valid, task):
    """The forward in pieces (flax intermediates) under jit vs jit(vmap) with R = 6 (other
    runs: seeds 1..5's params and batches): the first intermediate that differs."""
    from rlpt.models.transformer import Transformer, causal_mask, positions_from_mask

    def inter(p, t, v):
        _, st = Transformer(mc).apply({"params": p}, t, positions_from_mask(v), causal_mask(v),
                                      capture_intermediates=True, mutable=["intermediates"])
        return st["intermediates"]

    a = jax.device_get(jax.jit(inter)(p0, tokens, valid))
    pts = sweep_points(WAYS["R6"])
    ps = [build_model(p.cfg)[1] for p in pts]
    bs = [build_sft(p.cfg, mc, pp, task)[3](0) for p, pp in zip(pts, ps)]
    toks = np.stack([np.concatenate([b["prompt"], b["solution"]], 1) for b in bs])
    vals = np.stack([np.concatenate([b["prompt_mask"], b["solution_mask"]], 1) for b in bs]
                    ).astype(bool)
    b = row(jax.device_get(jax.jit(jax.vmap(inter))(stack(ps), toks, vals)), 0)
    out = []
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], leaves(b)):
        x = np.asarray(x)
        out.append((jax.tree_util.keystr(path), float(np.max(np.abs(x - y))),
                    int(np.sum(x != y)), int(x.size)))
    print("forward intermediates, train jit vs R6 jit(vmap) run 0 (in call order):")
    for n, d, k, s in out:
        print(f"   {n}: max|diff| {d:.3g}, {k}/{s} differ")
    return out


# ------------------------------------------------------------------------------------------
def part_ops(args):
    """Single ops at the SFT step's shapes (704 token rows = 64 x 11, d_model 128; attention
    probabilities [64, 2, 2, 11, 11]), random inputs: jit(f)(x) vs jit(vmap(f)) of R copies
    (other rows other inputs), run 0; which ones give other bits, for which R."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 704, 128)).astype(np.float32)
    B = rng.standard_normal((6, 704, 128)).astype(np.float32)
    S = rng.standard_normal((6, 128)).astype(np.float32)
    W = (rng.standard_normal((6, 128, 344)) * 0.05).astype(np.float32)
    Pr = np.asarray(jax.nn.softmax(rng.standard_normal((6, 64, 2, 2, 11, 11)), -1), np.float32)
    dP = rng.standard_normal((6, 64, 2, 2, 11, 11)).astype(np.float32)
    ops = {
        "matmul x @ W [704,128]x[128,344]": (lambda a, w: a @ w, (A, W)),
        "weight grad x^T dy [128,704]x[704,128]": (lambda a, b: a.T @ b, (A, B)),
        "sum over rows sum(a, 0) [704,128]->[128]": (lambda a: jnp.sum(a, 0), (A,)),
        "fused sum(a*b, 0) [704,128]->[128] (a norm scale's grad)":
            (lambda a, b: jnp.sum(a * b, 0), (A, B)),
        "fused sum(a*s*b, -1) [704,128]->[704] (RMSNorm backward)":
            (lambda a, b, s: jnp.sum(a * s * b, -1), (A, B, S)),
        "RMSNorm a*rsqrt(mean(a^2,-1)+eps)*s":
            (lambda a, s: a * jax.lax.rsqrt(jnp.mean(a * a, -1, keepdims=True) + 1e-6) * s,
             (A, S)),
        "global sum of squares (grad norm)": (lambda a: jnp.sum(a * a), (A,)),
        "softmax backward p*(dp - sum(p*dp,-1))":
            (lambda p, d: p * (d - jnp.sum(p * d, -1, keepdims=True)), (Pr, dP)),
    }
    res = {}
    for name, (f, xs) in ops.items():
        a = np.asarray(jax.jit(f)(*[x[0] for x in xs]))
        res[name] = {}
        for R in (1, 2, 5, 6):
            b = np.asarray(jax.jit(jax.vmap(f))(*[x[:R] for x in xs]))[0]
            res[name][R] = (int(np.sum(a != b)), int(a.size), float(np.max(np.abs(a - b))))
        print(f"{name}: " + "; ".join(f"R={R} {n}/{size} differ (max {d:.2g})"
                                      for R, (n, size, d) in res[name].items()))
    dump("ops", res)


# ------------------------------------------------------------------------------------------
def snapshot_steps(steps):
    """The steps whose params a run saves: every step up to 50, then every 10th."""
    return [s for s in range(1, steps + 1) if s <= 50 or s % 10 == 0 or s == steps]


def part_run(args):
    """One way, `--steps` SFT steps: seed 0's loss every step, its params at snapshot_steps,
    and its evaluations after SFT, in /tmp/sft_divergence/run_<way><tag>.npz / .json."""
    cfg = train_config()
    task = build_task(cfg)
    w = args.way
    way = TrainWay(cfg, task) if w == "train" else GroupWay(sweep_points(WAYS[w]), task)
    seed0 = [0] if w == "train" else [i for i, p in enumerate(way.pts) if p.seed == 0]
    keep = set(snapshot_steps(args.steps))
    snaps, losses, t0 = {}, [], time.time()
    for s in range(args.steps):
        m = way.step(s)
        loss = np.asarray(m["loss"]).reshape(-1)
        losses.append([float(loss[i]) for i in seed0])
        if s + 1 in keep:
            p = way.params()
            for j, i in enumerate(seed0):
                pi = p if w == "train" else row(p, i)
                for n, x in zip(names_of(pi), leaves(pi)):
                    snaps[f"{s + 1}|{j}|{n}"] = x
    secs = time.time() - t0
    final = way.params()
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    ev = {}
    tr = way if w == "train" else TrainWay(cfg, task)
    if w == "train":
        ev["own"] = tr.evaluate(final, eval_batch)             # what rlpt.train reports
    else:
        plist = [row(final, i) for i in range(way.R)]
        out = way.evaluate(plist, eval_batch)                 # what rlpt.sweep reports
        ev["own"] = out[0]
        ev["own_seed0_runs"] = [out[i] for i in seed0]
        ev["train_eval_of_these_params"] = tr.evaluate(row(final, 0), eval_batch)
        other = os.path.join(OUT, "run_train.npz")
        if os.path.exists(other):    # this program's evaluation of train's SFT params
            with np.load(other) as z:
                names = names_of(plist[0])
                pt = {n: z[f"{args.steps}|0|{n}"] for n in names}
            _, td = jax.tree_util.tree_flatten(plist[0])
            plist[0] = jax.tree_util.tree_unflatten(td, [pt[n] for n in names])
            ev["this_eval_of_train_params"] = way.evaluate(plist, eval_batch)[0]
    for k, v in ev.items():
        print(f"{w}{args.tag} {k}: {v}")
    os.makedirs(OUT, exist_ok=True)
    np.savez(os.path.join(OUT, f"run_{w}{args.tag}.npz"), **snaps)
    with open(os.path.join(OUT, f"run_{w}{args.tag}.json"), "w") as f:
        json.dump({"way": w, "steps": args.steps, "losses": losses, "evals": ev,
                   "seconds": secs}, f, indent=1)
    print(f"{w}{args.tag}: {args.steps} steps in {secs:.0f}s -> {OUT}/run_{w}{args.tag}.*")


def part_compare(args):
    """Every run_*.npz against run_train.npz, step by step."""
    ref = np.load(os.path.join(OUT, "run_train.npz"))
    refj = json.load(open(os.path.join(OUT, "run_train.json")))
    steps = sorted({int(k.split("|")[0]) for k in ref.files})
    names = sorted({k.split("|", 2)[2] for k in ref.files})
    scale = max(float(np.max(np.abs(ref[f"1|0|{n}"]))) for n in names)
    res = {}
    others = sorted(f[4:-4] for f in os.listdir(OUT) if f.startswith("run_") and
                    f.endswith(".npz") and f != "run_train.npz")
    for o in others:
        z = np.load(os.path.join(OUT, f"run_{o}.npz"))
        oj = json.load(open(os.path.join(OUT, f"run_{o}.json")))
        runs = sorted({int(k.split("|")[1]) for k in z.files})
        rows = []
        for s in steps:
            d = [max(float(np.max(np.abs(z[f"{s}|{j}|{n}"].astype(np.float64)
                                         - ref[f"{s}|0|{n}"]))) for n in names) for j in runs]
            nd = sum(int(np.sum(z[f"{s}|0|{n}"] != ref[f"{s}|0|{n}"])) for n in names)
            rows.append({"step": s, "max_abs": d[0], "rel": d[0] / scale, "n_differ": nd,
                         "loss": oj["losses"][s - 1][0], "loss_train": refj["losses"][s - 1][0],
                         "seed0_runs_max_abs_vs_train": d})
        first_p = next((r["step"] for r in rows if r["n_differ"]), None)
        first_l = next((i + 1 for i, (a, b) in enumerate(zip(oj["losses"], refj["losses"]))
                        if a[0] != b[0]), None)
        res[o] = {"first_step_params_differ": first_p, "first_step_loss_differs": first_l,
                  "rows": rows, "evals": oj["evals"]}
        print(f"== {o} vs train: params first differ after step {first_p}, loss first differs "
              f"at step {first_l}")
        for r in rows:
            if r["step"] in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 400, 500):
                print(f"   step {r['step']:4d}: max|dparam| {r['max_abs']:.3g} (rel {r['rel']:.2g},"
                      f" {r['n_differ']} elements differ), loss {r['loss']:.7f} vs "
                      f"{r['loss_train']:.7f}"
                      + (f", seed-0 runs {r['seed0_runs_max_abs_vs_train']}" if len(runs) > 1
                         else ""))
        for k, v in oj["evals"].items():
            print(f"   eval {k}: {v}")
    print("== train eval:", refj["evals"])
    dump("compare", res)


# ------------------------------------------------------------------------------------------
def part_perturb(args):
    """The train path from initial params with ONE element moved by one ulp (np.nextafter),
    n times (different elements), each to the end of SFT and evaluated as rlpt.train does."""
    cfg = train_config()
    task = build_task(cfg)
    model_cfg, p0 = build_model(cfg)
    eval_batch = task.eval_set(cfg.eval.n_prompts)
    ls, td = jax.tree_util.tree_flatten(jax.device_get(p0))
    names = names_of(p0)
    rng = np.random.default_rng(args.perturb_seed)
    track = [1, 10, 50, 100, 150, 200, 300, 400, 500]
    res, ref_track = [], {}
    for k in range(-1, args.n):
        ls2 = [np.array(x) for x in ls]
        what = "unperturbed"
        if k >= 0:
            j = int(rng.integers(len(ls2)))
            e = int(rng.integers(ls2[j].size))
            flat = ls2[j].reshape(-1)
            old = flat[e]
            flat[e] = np.nextafter(old, np.float32(np.inf) if k % 2 == 0 else np.float32(-np.inf))
            what = f"{names[j]}[{e}] {old!r} -> {flat[e]!r}"
        tr = TrainWay(cfg, task, jax.tree_util.tree_unflatten(td, [jnp.asarray(x) for x in ls2]))
        growth = {}
        for s in range(args.steps):
            m = tr.step(s)
            if s + 1 in track:
                p = tr.params()
                if k == -1:
                    ref_track[s + 1] = p
                else:
                    growth[s + 1] = maxdiff(ref_track[s + 1], p)[0]
        pf = tr.params()
        r = tr.evaluate(pf, eval_batch)
        r.update(what=what, final_loss=float(m["loss"]))
        if k == -1:
            ref = pf
        else:
            r["max_abs_param_diff_vs_unperturbed"] = maxdiff(ref, pf)
            r["max_abs_param_diff_by_step"] = growth
        res.append(r)
        print(f"{what}: greedy_acc {r['greedy_acc']:.4f} pass@1 {r['pass@1']:.4f} final loss "
              f"{r['final_loss']:.6f}" + ("" if k < 0 else " max|dparam| vs unperturbed by step "
                                          + " ".join(f"{a}:{b:.2g}" for a, b in growth.items())),
              flush=True)
    acc = [r["greedy_acc"] for r in res]
    print(f"greedy_acc over {len(acc)} runs: min {min(acc):.4f} max {max(acc):.4f} mean "
          f"{np.mean(acc):.4f} sd {np.std(acc, ddof=1):.4f}")
    dump(f"perturb_{args.perturb_seed}", {"runs": res, "steps": args.steps})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", required=True,
                    choices=["inputs", "step1", "ops", "run", "compare", "perturb"])
    ap.add_argument("--way", default="train", choices=list(WAYS))
    ap.add_argument("--tag", default="", help="suffix of a run's files (e.g. a repeat)")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--localise", type=int, default=1)
    ap.add_argument("--perturb_seed", type=int, default=1234, help="which elements --part=perturb "
                    "moves")
    args = ap.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS="
          f"{os.environ.get('XLA_FLAGS', '')!r}", flush=True)
    {"inputs": part_inputs, "step1": part_step1, "ops": part_ops, "run": part_run,
     "compare": part_compare,
     "perturb": part_perturb}[args.part](args)


if __name__ == "__main__":
    main()

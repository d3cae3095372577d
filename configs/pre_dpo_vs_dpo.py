"""Pre-DPO (arXiv 2504.15843) vs DPO on 1-2 digit addition pairs, matched steps
(experiments/pre_dpo_vs_dpo/; issue 27, claim 1).

    python -m rlpt.sweep --config=configs/pre_dpo_vs_dpo.py --workdir=runs/pre_dpo_vs_dpo

Both arms: the recipe of configs/dpo_arith.py (SFT 500 x 64, then `steps` preference steps of
32 synthetic pairs at lr 1e-4, beta 0.1, evaluation every 50 steps). Pre-DPO first trains a DPO
guide for `steps` steps on the same pairs, then restarts from the SFT model with the guide as the
reference, so it spends twice the preference updates of DPO: `dpo2x` (DPO for 2 x `steps`) is
the arm with Pre-DPO's update count, `dpo` the arm with its final phase's. `flip` flips that
share of the training pairs' labels (rlpt.tasks.label_noise; 0 by default).

Arguments (after ':'): algo (for get_config: dpo | pre_dpo), seed, seeds (get_sweep), arms
('/'-separated of dpo, dpo2x, pre_dpo), steps, flip, quick (1 = a seconds-long smoke version).
"""
from rlpt.config import parse_arg

ARGS = dict(algo="dpo", seed=0, seeds=5, arms="dpo/dpo2x/pre_dpo", steps=200, flip=0.0,
            quick=0)
ALGOS = ("dpo", "pre_dpo")


def get_config(arg: str = ""):
    from configs import dpo_arith
    a = parse_arg(arg, **ARGS)
    from rlpt.sweep.points import first_then, union_algo
    c = dpo_arith.get_config(f"algo={a['algo']},seed={a['seed']},quick={a['quick']}")
    c.algo = union_algo(first_then(a["algo"], ALGOS))   # every arm's keys: a point switches
    if not a["quick"]:
        c.pref.steps = a["steps"]
    c.pref.flip_rate = a["flip"]
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """The arms x seeds 0..seeds-1 (each run alone: preference runs are not vmapped)."""
    from rlpt.sweep.points import algorithm_arms, first_then, product, seeds
    a = parse_arg(arg, **ARGS)
    c = get_config(arg)
    arm = dict(zip(first_then(a["algo"], ALGOS), algorithm_arms(first_then(a["algo"], ALGOS))))
    dpo, pre = arm["dpo"], arm["pre_dpo"]
    arms = {"dpo": dpo, "dpo2x": dict(dpo, **{"config.pref.steps": 2 * c.pref.steps}),
            "pre_dpo": pre}
    return product([arms[x] for x in a["arms"].split("/") if x], seeds(a["seeds"]))

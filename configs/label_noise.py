"""Robust RLHF under label noise (issue 27, claim 3; experiments/label_noise/): training labels
flipped at rates {0, 0.2, 0.4} (rlpt.tasks.label_noise), held-out labels clean.

    python -m rlpt.sweep --config=configs/label_noise.py:what=policy --workdir=runs/label_noise_policy
    python -m rlpt.sweep --config=configs/label_noise.py:what=rm --workdir=runs/label_noise_rm

* `what=policy`: DPO vs robust DPO (rDPO, arXiv 2403.00409) vs conservative DPO (cDPO) on the
  pairs of configs/dpo_arith.py (chosen = gold answer, rejected = a corruption), a share `flip`
  of the training pairs swapped (`pref.flip_rate`). rDPO and cDPO are told the true rate
  (`algo.eps` = flip), as their papers assume a known rate. Reported: held-out pair accuracy
  (the implicit reward orders clean held-out pairs) and greedy accuracy on the task.
* `what=rm`: Bradley-Terry vs VRPO reward models (arXiv 2504.03784) on the groups of
  configs/rm_arith.py (gold + 3 corruptions), the gold label moved to a wrong response in a
  share `flip` of the training groups (`rm.flip_rate`). Reported: held-out pairwise accuracy.

Arguments (after ':'): what (policy | rm), algo / kind (for get_config: the base arm), seed,
seeds (get_sweep), flips ('/'-separated rates), flip (get_config's rate), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(what="policy", algo="dpo", kind="bt", seed=0, seeds=5, flips="0/0.2/0.4", flip=0.0,
            quick=0)
POLICY_ARMS = ("dpo", "rdpo", "cdpo")
RM_ARMS = ("bt", "vrpo")


def get_config(arg: str = ""):
    from configs import dpo_arith, rm_arith
    from rlpt.preference.config import rm_config
    from rlpt.sweep.points import first_then, union_algo
    a = parse_arg(arg, **ARGS)
    common = f"seed={a['seed']},quick={a['quick']}"
    if a["what"] == "policy":
        c = dpo_arith.get_config(f"algo={a['algo']},{common}")
        c.algo = union_algo(first_then(a["algo"], POLICY_ARMS))
        c.algo.eps = a["flip"]
        c.pref.flip_rate = a["flip"]
    elif a["what"] == "rm":
        c = rm_arith.get_config(f"kind={a['kind']},{common}")
        for kind in RM_ARMS:   # every kind's keys, so that a point switches the kind
            for k, v in rm_config(kind).items():
                if k not in c.rm:
                    c.rm[k] = v
        c.rm.flip_rate = a["flip"]
    else:
        raise ValueError(f"label_noise: what={a['what']!r}; expected 'policy' or 'rm'")
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """arms x flip rates x seeds 0..seeds-1, each point one run (preference trainer)."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    flips = [float(x) for x in str(a["flips"]).split("/") if x]
    if a["what"] == "policy":
        arms = [dict({"config.algo.name": name, "config.pref.flip_rate": f},
                     **({"config.algo.eps": f} if name != "dpo" else {}))
                for name in POLICY_ARMS for f in flips]
    else:
        arms = [{"config.rm.kind": k, "config.algo.name": f"rm_{k}", "config.rm.flip_rate": f}
                for k in RM_ARMS for f in flips]
    return product(arms, seeds(a["seeds"]))

"""DRPO's double robustness (Xu et al., arXiv 2506.01183; issue 27, claim 2) on 1-2 digit addition
pairs (experiments/drpo_robustness/).

    python -m rlpt.sweep --config=configs/drpo_robustness.py:case=noisy --workdir=runs/drpo_noisy
    python -m rlpt.sweep --config=configs/drpo_robustness.py:case=wrong_ref --workdir=runs/drpo_wrong_ref
    python -m rlpt.sweep --config=configs/drpo_robustness.py:case=clean --workdir=runs/drpo_clean

DRPO's estimate of the preference of pi over the reference stays consistent when either its
preference model g or its reference policy is right. Two cases, each breaking one of them for
the offline arms:

* `case=noisy`: 30% of the training pairs' labels flipped (`pref.flip_rate`, and `rm.flip_rate`
  for the reward model DRPO may learn), the SFT model as the reference;
* `case=wrong_ref`: clean labels, the model before SFT as the reference (`pref.reference=init`);
* `case=clean`: clean labels and the SFT reference, the control (added after the noisy case's
  results, to show that the arms learn when nothing is broken).

Arms (each at its paper's defaults: DPO beta 0.1, DRPO beta 0.04, online DPO beta 0.1):
`dpo` (offline pairs), `drpo` (g from the task reward: a right preference model), `drpo_rm`
(g = a Bradley-Terry reward model trained in the run on the same, possibly flipped, labels),
`online_dpo` (pairs sampled from the policy every step and labelled by the task reward; DRPO
samples online too, so this is the fair control). Same SFT warm-up, steps, batch and learning
rate (those of configs/dpo_arith.py) for every arm.

Arguments (after ':'): case (noisy | wrong_ref | clean), algo (get_config's arm), seed, seeds, arms
('/'-separated), flip (the noisy case's rate), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(case="noisy", algo="dpo", seed=0, seeds=5, arms="dpo/drpo/drpo_rm/online_dpo",
            flip=0.3, quick=0)
ALGOS = ("dpo", "drpo", "online_dpo")
CASES = ("noisy", "wrong_ref", "clean")


def get_config(arg: str = ""):
    from configs import dpo_arith
    from rlpt.sweep.points import first_then, union_algo
    a = parse_arg(arg, **ARGS)
    if a["case"] not in CASES:
        raise ValueError(f"drpo_robustness: case={a['case']!r}; expected one of {CASES}")
    algo = "drpo" if a["algo"] == "drpo_rm" else a["algo"]
    c = dpo_arith.get_config(f"algo={algo},seed={a['seed']},quick={a['quick']}")
    c.algo = union_algo(first_then(algo, ALGOS))   # every arm's keys: a point switches the arm
    if a["algo"] == "drpo_rm":
        c.algo.g = "reward_model"
    if not a["quick"]:
        c.rm.steps = 300    # DRPO's reward model (g = reward_model), as configs/dpo_arith.py
    c.pref.flip_rate = c.rm.flip_rate = a["flip"] if a["case"] == "noisy" else 0.0
    c.pref.reference = "init" if a["case"] == "wrong_ref" else "sft"
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """The arms x seeds 0..seeds-1 (each point one run of the preference trainer)."""
    from rlpt.sweep.points import algorithm_arms, first_then, product, seeds
    a = parse_arg(arg, **ARGS)
    base = "drpo" if a["algo"] == "drpo_rm" else a["algo"]
    names = first_then(base, ALGOS)
    by_name = dict(zip(names, algorithm_arms(names, uniform=("name", "group_size"))))
    arms = dict(by_name, drpo=dict(by_name["drpo"], **{"config.algo.g": "task_reward"}),
                drpo_rm=dict(by_name["drpo"], **{"config.algo.g": "reward_model"}))
    wanted = [x for x in a["arms"].split("/") if x]
    unknown = [x for x in wanted if x not in arms]
    if unknown:
        raise ValueError(f"arms={a['arms']!r}: unknown {unknown}; known: {sorted(arms)}")
    return product([arms[x] for x in wanted], seeds(a["seeds"]))

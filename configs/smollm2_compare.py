"""GRPO against GSPO (arXiv 2507.18071), GMPO (arXiv 2507.20673) and Dr. GRPO (arXiv 2503.20783)
on SmolLM2-135M-Instruct (issue 28, third claim): the pilot that decides which of the two claims
the pretrained model can show, and then the experiment.

    # pilot: GRPO alone at three learning rates, one seed outside the experiment's
    python -m rlpt.sweep --config=configs/smollm2_compare.py:arms=grpo,lrs=1e-5/5e-5/2e-4,seeds=1,seed_start=10,steps=20 \
        --workdir=runs/smollm2_compare_pilot
    # GSPO / GMPO: every arm at the rate where GRPO degraded in the pilot (5e-5, the default,
    # experiments/smollm2_compare/README.md), 20 steps, 3 seeds
    python -m rlpt.sweep --config=configs/smollm2_compare.py --workdir=runs/smollm2_compare

The run is configs/smollm2_passk.py's (word problems with addends 2-29, 4 questions x 8 samples a
step, temperature 1, beta 0, the verifier on the host), made off-policy: each batch of samples
is used for `epochs` x `minibatches` optimizer updates (default 4 x 4: one group of 8 samples per
minibatch, all but the first update off-policy), so the importance ratios leave 1 and the clips
can bind, the setting where GSPO and GMPO claim stability over GRPO. The arms differ only in
what their papers' defaults differ in (the DEFAULTS of rlpt/algorithms/<name>.py); Dr. GRPO
(no 1/|o| length normalisation, no std scaling) is there for the length claim, which needs
longer answers (`max_new` 128). The evaluation: 64 held-out questions, greedy and 8 draws per
question on the same draws in every run (eval.seed 0), so the base model is evaluated once per
sweep (rlpt.sweep.eval_cache).

Arguments (after ':'): algo (for get_config), seed, seeds and seed_start (get_sweep), arms
('/'-separated), lrs ('/'-separated learning rates, an axis; every arm at each), steps, epochs,
minibatches, max_new (new tokens), n_prompts (held-out questions), lora (a rank), quick.
"""
from configs.recipes import lr_axis
from configs.smollm2_passk import get_config as smollm2_passk_config
from rlpt.config import parse_arg
from rlpt.sweep.points import first_then, union_algo

ARGS = dict(algo="grpo", seed=0, seeds=3, seed_start=0, arms="grpo/gspo/gmpo", lrs="5e-5",
            steps=20, epochs=4, minibatches=4, max_new=64, n_prompts=64, lora=0, quick=0)
ALGOS = ("grpo", "gspo", "gmpo", "dr_grpo")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = smollm2_passk_config(f"seed={a['seed']},steps={a['steps']},lora={a['lora']},"
                             f"n_prompts={a['n_prompts']},n_samples=8,chunk=8,quick={a['quick']}")
    c.algo = union_algo(first_then(a["algo"], ALGOS))   # every arm's keys: a point switches it
    c.algo.group_size = -1
    c.algo.beta = 0.0                                   # no reference model, as the base run
    c.optim.lr = float(a["lrs"].split("/")[0])          # the sweep's lr axis overrides it
    c.rl.ppo_epochs, c.rl.minibatches = a["epochs"], a["minibatches"]
    if a["quick"]:
        c.rl.ppo_epochs, c.rl.minibatches = 2, 2
    else:
        c.sampling.max_new_tokens = a["max_new"]
    return c


def get_sweep(arg: str = ""):
    """arms x learning rates x seeds (points that train alone: the reward is on the host)."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    arms = chosen_algorithm_arms(a["algo"], ALGOS, a["arms"])
    return product(arms, lr_axis(a), seeds(a["seeds"], a["seed_start"]))

"""Reward hacking (issue 27, claim 8; the verifiers talk): GRPO against an exploitable verifier
that searches for the answer anywhere in the response (`contains_answer`, rlpt.rewards.proxy),
its true accuracy (the exact-answer verifier) logged beside it and scoring every held-out
evaluation, against GRPO on the exact verifier, and against the lenient verifier with a rubric
term that closes the hole (minus `penalty` per character beyond the answer's length).

    python -m rlpt.sweep --config=configs/reward_hacking.py --workdir=runs/reward_hacking

Recipe: configs/recipes.arithmetic_run (the tiny model from scratch; SFT 500 x 64 direct answers,
lr 1e-3; GRPO, beta 0, 8 samples at temperature 1, lr 5e-4) on 1..3-digit addition, whose direct
answers a tiny model gets only partly right, with `max_new` new tokens: room for several guesses
where an answer needs at most 4 digits and eos. Held-out evaluation (exact answers) after SFT and
every rl_steps // 4 steps.

Arms: `exact` (the task's verifier), `contains` (the lenient one), `contains_penalty`.

Arguments (after ':'): arm, seed, seeds (get_sweep), rl_steps, max_new, penalty, quick.
"""
from configs.recipes import arithmetic_run
from rlpt.config import base_config, parse_arg
from rlpt.sweep.points import apply_overrides

ARGS = dict(arm="exact", seed=0, seeds=5, size="tiny", quick=0, rl_steps=200, max_new=12,
            penalty=0.5)


def arms(a: dict) -> dict:
    """arm -> its overrides (both keys in every arm)."""
    penalty = "config.reward.proxy_kwargs.extra_char_penalty"
    return {"exact": {"config.reward.proxy": "", penalty: 0.0},
            "contains": {"config.reward.proxy": "contains_answer", penalty: 0.0},
            "contains_penalty": {"config.reward.proxy": "contains_answer",
                                 penalty: float(a["penalty"])}}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = base_config("grpo")
    arithmetic_run(c, a, rl_steps=a["rl_steps"], rl_batch_size=16,
                   eval_every=max(a["rl_steps"] // 4, 1))
    c.task.kwargs = dict(min_digits=1, max_digits=3)
    c.sampling.max_new_tokens = a["max_new"]
    c.sampling.temperature = 1.0
    c.algo.beta = 0.0
    c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 256, 4, (1, 4)
    c.reward.proxy, c.reward.proxy_kwargs = "", {"extra_char_penalty": 0.0}
    apply_overrides(c, arms(a)[a["arm"]])
    return c


def get_sweep(arg: str = ""):
    """arms x seeds: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product(list(arms(a).values()), seeds(a["seeds"]))

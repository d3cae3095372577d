"""General-Reasoner (arXiv 2505.14652) at this scale (issue 27, seed papers): a model-based
verifier against a rule verifier as the RL reward, on answers that come in two correct forms.

    python scripts/train_judge.py --out runs/judge_add1_padded --max_digits 1 \
        --padded_fraction 0.5 --steps 1500
    python -m rlpt.sweep --config=configs/general_reasoner.py --workdir=runs/general_reasoner

The task is 1-digit addition whose SFT demonstrations write half of the answers zero-padded to
the answer width (`07` for 7; `AdditionTask(padded_fraction=0.5)`; two-digit sums have one
form), so the policy answers in both forms. The truth is `numeric_answer` (both forms right):
it scores every held-out evaluation and is logged beside the reward that RL optimises. Arms,
from one SFT model per seed:
- `rule`: the strict rule verifier `exact_answer` (reward.proxy): a padded right answer scores 0,
  the false negative a rule-based verifier makes on an unexpected surface form;
- `judge`: a tiny generative verifier (`reward.kind="judge"`, rlpt.rewards.judge) trained by
  scripts/train_judge.py on right and wrong answers (near misses, any number, empty) in both
  forms, p(y) / (p(y) + p(n)) as the reward: the model-based verifier, with its own errors;
- `oracle`: the truth itself (`numeric_answer`), the verifier neither of the others can beat.
Recipe: configs/grpo_judge.py's (tiny model from scratch; SFT 60 x 64, lr 1e-3, so RL has room;
GRPO, beta 0, 16 prompts x 8 samples at temperature 1, lr 5e-4, 100 steps); held-out
evaluation (the truth, 256 prompts, greedy and 4 samples) after SFT and every 25 steps, with
the share of greedy answers written in the padded form (`greedy_leading_zero`). A 2-digit
version was tried first: a judge trained 2000 steps on it could not tell a near miss from the
gold answer (ranked 0.502), so it would have been a test of an untrained verifier.

Arguments (after ':'): arm (rule | judge | oracle), judge (the trained judge's directory),
seed, seeds (get_sweep), quick.
"""
from configs import grpo_judge
from rlpt.config import parse_arg
from rlpt.sweep.points import apply_overrides

ARGS = dict(arm="rule", judge="runs/judge_add1_padded", seed=0, seeds=5, quick=0)


def arms(a: dict) -> dict:
    """arm -> its overrides (the same keys in every arm)."""
    kind, proxy = "config.reward.kind", "config.reward.proxy"
    return {"rule": {kind: "device", proxy: "exact_answer"},
            "judge": {kind: "judge", proxy: ""},
            "oracle": {kind: "device", proxy: ""}}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    judge = "" if a["quick"] else a["judge"]   # quick: a random tiny judge, for smoke runs
    c = grpo_judge.get_config(f"judge={judge},seed={a['seed']},quick={a['quick']}")
    c.task.kwargs = dict(min_digits=1, max_digits=1, padded_fraction=0.5, answer_check="numeric")
    c.sampling.max_new_tokens = 4
    c.eval.n_samples, c.eval.ks = 4, (1, 4)
    c.eval.greedy_aux = ("leading_zero",)   # the share of greedy answers in the padded form
    c.reward.proxy = ""
    apply_overrides(c, arms(a)[a["arm"]])
    return c


def get_sweep(arg: str = ""):
    """arms x seeds: one group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product(list(arms(a).values()), seeds(a["seeds"]))

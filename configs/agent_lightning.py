"""Agent Lightning (arXiv 2508.03680) at this scale (issue 27, claim 11): LightningRL's per-call
(transition) loss against whole-trajectory GRPO on a two-call calculator task.

    python -m rlpt.sweep --config=configs/agent_lightning.py --workdir=runs/agent_lightning

The task is `a*b+c=` (3-digit x 2-digit products plus a 3-digit addend; rlpt.tasks.tool_task
with `addend_digits`): a demonstration that calls makes two calls, `[a*b]<p>[p+c]<s>s`, so an
episode is up to three LLM calls (the two calls and the answer). Recipe: configs/tool_calc.py's
(tiny model from scratch; SFT 300 x 64 demos, half of them calling, lr 2e-3; then RL with the
calculator in the rollout, beta 0, 16 prompts x 8 samples per step, correctness reward only;
256 held-out prompts, greedy and 4 samples, after SFT and every `eval_every` steps), with room
for two calls (`sampling.max_new_tokens` 40). Arms, from one SFT model per seed and the same
prompts:
- `grpo`: whole-trajectory GRPO, the episode as one sequence with the tool results masked
  (seq_mean_token_mean over episodes);
- `lightning_rl`: the episode split into its calls, each a sample with the episode's advantage
  (rlpt.algorithms.lightning_rl: seq_mean_token_mean over transitions).
Both use GRPO's group z-score over the 8 episodes of a prompt and the same learning rate.

Arguments (after ':'): algo (grpo | lightning_rl, for get_config), seed, seeds (get_sweep: how
many, from 0), arms (get_sweep: '/'-separated), steps, lr, eval_every, call_fraction, quick.
"""
from configs import tool_calc
from configs.recipes import comparison_config
from rlpt.config import parse_arg

ARGS = dict(algo="grpo", seed=0, seeds=5, arms="grpo/lightning_rl", steps=100, lr=5e-4,
            eval_every=25, call_fraction=0.5, quick=0)
ALGOS = ("grpo", "lightning_rl")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = tool_calc.get_config(f"size=tiny,seed={a['seed']},quick={a['quick']},"
                             f"call_fraction={a['call_fraction']}")
    algo = comparison_config(a["algo"], ALGOS).algo   # every arm's keys: a point switches the arm
    algo.beta = 0.0
    c.algo = algo
    c.task.kwargs.addend_digits = 3
    c.sampling.max_new_tokens = 40   # `[123*45]<5535>[5535+678]<6213>6213` + eos <= 39
    c.tool.max_calls = 2
    if not a["quick"]:
        c.rl.steps, c.eval.every = a["steps"], a["eval_every"]
    c.optim.lr = a["lr"]
    return c


def get_sweep(arg: str = ""):
    """algo in {grpo, lightning_rl} x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    return product(chosen_algorithm_arms(a["algo"], ALGOS, a["arms"]), seeds(a["seeds"]))

"""Domain transfer (UIUC, arXiv 2507.00432; issue 27, claim 13): does training on one task help or
hurt another? RL (GRPO) against more supervised fine-tuning on the same task and budget.

    python -m rlpt.sweep --config=configs/domain_transfer.py --workdir=runs/domain_transfer

The `transfer` task (rlpt.tasks.transfer) with two components, 1-2 digit addition (index 0) and
1-2 digit x 1 digit multiplication (index 1):
- the warm-up: SFT on both in equal shares (configs/recipes.arithmetic_run: the `tiny` model from
  scratch, 500 x 64, lr 1e-3), standing for a pretrained model with both skills;
- then `rl_steps` steps on ONE component (`train`), 16 prompts x 8 samples of up to 5 tokens,
  lr 5e-4, with
  - `grpo` (beta 0.04, configs/grpo_arith.py's) on the task reward, or
  - `sft` (rlpt/algorithms/sft.py: the NLL of the gold solutions of the same prompts), the same
    steps, prompts and learning rate;
- held-out: 256 problems, half of each component, greedy and 8 samples, after SFT and every
  rl_steps // 4 steps, per component (`greedy_acc_d0` addition, `greedy_acc_d1`
  multiplication).
Every arm of a seed starts from the same SFT model.

Arguments (after ':'): seed, seeds (get_sweep), rl_steps, quick.
"""
from configs.recipes import arithmetic_run, comparison_config
from rlpt.config import parse_arg

ARGS = dict(seed=0, seeds=5, rl_steps=200, size="tiny", quick=0)
ALGOS = ("grpo", "sft")
COMPONENTS = [dict(name="addition", kwargs=dict(min_digits=1, max_digits=2)),
              dict(name="multiplication", kwargs=dict(min_digits_a=1, max_digits_a=2,
                                                      min_digits_b=1, max_digits_b=1))]


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = comparison_config("grpo", ALGOS)
    arithmetic_run(c, a, rl_steps=a["rl_steps"], rl_batch_size=16,
                   eval_every=max(a["rl_steps"] // 4, 1))
    c.task.name = "transfer"
    c.task.kwargs = dict(components=COMPONENTS, train=0)
    c.algo.beta = 0.04
    c.eval.n_prompts = 16 if a["quick"] else 256
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """trained component x algorithm x seeds: one vmapped program per (component, algorithm)."""
    from rlpt.sweep.points import algorithm_arms, axis, product, seeds
    a = parse_arg(arg, **ARGS)
    return product(axis("config.task.kwargs.train", [0, 1]), algorithm_arms(list(ALGOS)),
                   seeds(a["seeds"]))

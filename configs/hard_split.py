"""ExPO (arXiv 2507.02834), ReLIFT (arXiv 2506.07527) and UFT (arXiv 2505.16984) vs GRPO on the
hard split of scratchpad addition (issue 15 claim 10, experiments/hard_split/): does guidance
from the gold solution (self-explanations conditioned on it, SFT on all-failed prompts, solution
prefixes as hints) learn prompts that the SFT model never solves (pass@8 = 0), where GRPO gets
no signal (every sample of such a prompt is wrong, so its group advantage is 0)?

    python -m rlpt.sweep --config=configs/hard_split.py --workdir=runs/hard_split

The recipe is configs.recipes.scratchpad_run (tiny model from scratch, 300 SFT steps x 64 worked
solutions, lr 1e-3, then 200 RL steps of 16 prompts x 8 samples at temperature 1, lr 3e-4, no KL
term; held-out evaluation of 128 prompts x 8 samples after SFT, after 100 and after 200 RL steps)
with the hard split on: operands of 1..`max_digits` (3) digits, and with probability 1/2 a hard
row where one operand has `max_digits + 1 .. hard_max_digits` (4) digits. Hard rows have no SFT
data (solution_mask 0 in the warm-up; docs/tasks.md measures 4- and 5-digit pass@8 = 0.000
after SFT). Worked solutions of n columns take <= 10 n + 2 tokens (42 for 4 digits), inside
`max_new` = 48. The held-out set's `difficulty` labels give per-difficulty keys
(`pass@8_d4` etc., rlpt.evaluation.metrics.by_difficulty): the hard rows are those with d > max_digits.

The arms differ exactly in their paper defaults (the DEFAULTS of each rlpt/algorithms/<name>.py,
rlpt.sweep.points.algorithm_arms), except the uniform keys beta (0 in every arm: GRPO, ExPO and
UFT default to beta 0.04, ReLIFT to 0) and group_size (8 = samples per prompt):
- grpo: (r - mean) / std per group, clip 0.2, `seq_mean_token_mean`;
- exp_grpo (ExPO): GRPO plus sft_coef 0.1 x NLL (`seq_mean_token_sum`) of one self-explanation
  per prompt sampled with the gold solution in the context and scored without it;
- relift (ReLIFT): Dr. GRPO advantages, `seq_mean_token_sum_norm`; all-failed prompts go to a
  buffer of 128, one SFT update (token-mean NLL - 1e-3 x entropy) each time it fills;
- uft (UFT): GRPO on prompts with a prefix of the gold solution appended (l of <= 5 chunks,
  l ~ Binomial(n, p(t)), p cosine from 0.95 to 0.05 over hint_steps 300), plus sft_coef 1e-3 x
  NLL of the hint tokens.

Guidance needs the hard rows' gold solutions in the RL batches but not in the SFT warm-up: the
task keeps them in its RL batches (`make_batch`) and masks them in the warm-up's (`sft_batch`),
rlpt/tasks/scratchpad.py; ExPO, ReLIFT and UFT read them through solution_mask.

UFT's hints fade over `hint_steps` (300 by default, longer than the 200 RL steps, so in the first
sweep they never fade); the follow-up runs UFT with hint_steps 100 (hints fade over the first
half, none in the second) from the first sweep's SFT models, pairing seed by seed with its arms:

    python -m rlpt.sweep --config=configs/hard_split.py:arms=uft,hint_steps=100 \
        --workdir=runs/hard_split_uft100 --sft_from=runs/hard_split

Arguments (after ':'): algo (for get_config), seeds (get_sweep: 0 .. seeds-1), arms
('/'-separated), hint_steps (UFT's), and SCRATCHPAD_ARGS (seed, size, quick, rl_steps, sft_steps, batch, max_new,
lr, max_digits, hard_max_digits (4 here), evals).
"""
from configs.recipes import SCRATCHPAD_ARGS, comparison_config, scratchpad_run
from rlpt.config import parse_arg
from rlpt.tasks.scratchpad import max_solution_tokens

UFT_HINT_STEPS = 300   # UFT's paper default (the DEFAULTS of each rlpt/algorithms/<name>.py)
ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=3, arms="grpo/exp_grpo/relift/uft",
            hard_max_digits=4, hint_steps=UFT_HINT_STEPS)
ALGOS = ("grpo", "exp_grpo", "relift", "uft")


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    if a["hard_max_digits"] <= a["max_digits"]:
        raise ValueError(f"hard_max_digits={a['hard_max_digits']} must exceed max_digits="
                         f"{a['max_digits']}: this experiment needs the hard split")
    need = max_solution_tokens(a["hard_max_digits"])
    if a["max_new"] < need:
        raise ValueError(f"max_new={a['max_new']} < {need} tokens, the longest worked solution "
                         f"of a {a['hard_max_digits']}-digit hard row")
    c = comparison_config(a["algo"], ALGOS)   # every arm's keys: a point switches the arm
    c = scratchpad_run(c, a)                  # beta = 0 in every arm
    if a["algo"] == "uft":
        c.algo.hint_steps = a["hint_steps"]
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    arms = chosen_algorithm_arms(a["algo"], ALGOS, a["arms"])
    if a["hint_steps"] != UFT_HINT_STEPS:   # named in the point only when not the default
        arms = [dict(x, **{"config.algo.hint_steps": a["hint_steps"]})
                if x["config.algo.name"] == "uft" else x for x in arms]
    return product(arms, seeds(a["seeds"]))

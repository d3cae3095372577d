"""MGRPO (arXiv 2506.04746) vs GRPO: the self-correction rate of a second attempt (wrong -> right)
on scratchpad addition (issue 15 claim 12).

    python -m rlpt.sweep --config=configs/mgrpo_selfcorrect.py --workdir=runs/mgrpo_selfcorrect

The recipe is configs.recipes.scratchpad_run (the one of configs/gtpo_entropy.py: tiny model from
scratch, 300 SFT steps on 1-3 digit worked solutions, 200 RL steps of 16 prompts x 8 samples at
temperature 1, lr 3e-4, beta 0 in both arms), with a held-out evaluation of 128 prompts after SFT,
half-way and at the end. The arms differ exactly in their paper defaults
(rlpt.sweep.points.algorithm_arms): MGRPO adds the layer-2 loss (rlpt.algorithms.mgrpo: the
prompt + one layer-1 response + the instruction below, 8 corrections sampled per layer-2 prompt,
GRPO advantages within those groups, the two layers' losses summed, layer2_coef 1).

`layer2_per_prompt` = 1: objectives.md does not fix how many layer-1 responses go to layer 2 and
the paper's abstract describes one initial response fed to the second layer; 1 also keeps layer 2
at the size of layer 1 (16 prompts x 8 samples).

Both arms evaluate the same self-correction (`eval.self_correction=True`,
rlpt.evaluation.rollout.evaluate): the greedy answer, then a greedy second attempt after
`prompt + answer + layer2_instruction_ids` (MGRPO's layer-2 prompt), logged as
`sc_wrong_to_right` (share of the initially wrong prompts the second attempt gets right),
`sc_right_to_wrong` and `sc_acc_after` beside greedy_acc and pass@k. In RL rows the MGRPO arm also
logs its training-time rates `layer2_wrong_to_right`, `layer2_right_to_wrong` and
`layer2_from_wrong_frac` (sampled, temperature 1).

The instruction is `|=` (CharTokenizer ids 59, 18; `instr=` changes it): `|` is a character the
scratchpad task never writes, so it marks where the first attempt ends, and `=` is the last token
of every task prompt, after which the warm-up taught a worked solution, so the instruction ends
where a solution begins. A real instruction in words means nothing to a character-level model
trained from scratch. Measured on the seed-0 SFT model (greedy, 128 held-out prompts, greedy_acc
0.66): with any instruction the second attempt mostly ends at once (the first answer's digits are
followed by eos in every worked solution), sc_acc_after 0.04 and wrong -> right 0.02 for `|=`
(and for `\\n=`), 0.00-0.01 for the single markers `|`, `=`, `,`, `;`, `?`, `#`, newline and
`check:`. So self-correction starts near zero in both arms; it is what layer 2 trains.

Shapes: the scratchpad prompt is 9 tokens (3-digit operands), a response at most 48 (max_new),
so a layer-2 prompt is 9 + 48 + 2 = 59 wide, and its completion again has max_new = 48 tokens,
more than a 3-column worked solution (at most 32 with the eos) needs; prompt + completion
(107) is far below the tiny preset's 2048 positions.

Arguments (after ':'): algo (for get_config), seeds (get_sweep: 0 .. seeds-1), arms
('/'-separated), k (layer2_per_prompt), instr (the instruction text, CharTokenizer), and
SCRATCHPAD_ARGS (seed, size, quick, rl_steps, sft_steps, batch, max_new, lr, max_digits,
hard_max_digits, evals).
"""
from configs.recipes import SCRATCHPAD_ARGS, comparison_config, scratchpad_run
from rlpt.config import parse_arg

ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=3, arms="grpo/mgrpo", k=1, instr="|=")
ALGOS = ("grpo", "mgrpo")


def instruction_ids(text: str) -> tuple:
    """The CharTokenizer ids of the instruction text (`\\n` written as backslash-n)."""
    from rlpt.tokenizers import CharTokenizer
    return tuple(CharTokenizer().encode(text.replace("\\n", "\n")))


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = comparison_config(a["algo"], ALGOS)   # every arm's keys: a point switches the arm
    c = scratchpad_run(c, a)                  # beta 0 (both arms)
    c.algo.layer2_per_prompt = a["k"]
    c.algo.layer2_instruction_ids = instruction_ids(a["instr"])
    c.eval.self_correction = True             # sc_* rates in both arms (rlpt.evaluation.rollout.evaluate)
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = parse_arg(arg, **ARGS)
    return product(chosen_algorithm_arms(a["algo"], ALGOS, a["arms"]), seeds(a["seeds"]))

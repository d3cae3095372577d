"""KDRL (arXiv 2506.02208) vs GRPO vs KD alone, a stronger teacher distilled into the tiny
student on scratchpad addition (experiments/kdrl/):

    python -m rlpt.train --config=configs/kdrl_teacher.py --workdir=runs/kdrl_teacher
    python -m rlpt.export --workdir=runs/kdrl_teacher --out=runs/kdrl_teacher_hf
    python -m rlpt.sweep --config=configs/kdrl_vs_grpo.py --workdir=runs/kdrl_vs_grpo

The recipe is configs.recipes.scratchpad_run (tiny student from scratch, 300 SFT steps on 1-3 digit
worked solutions, 200 RL steps of 16 prompts x 8 samples at temperature 1, lr 3e-4, no KL term,
held-out evaluation of 128 prompts x 8 samples after SFT, half-way and at the end); the arms of a
seed share their SFT model (rlpt.sweep.sft_cache). Arms (`arms`, '/'-separated):

  grpo  GRPO with its paper defaults (rlpt/algorithms/grpo.py DEFAULTS; beta 0 as the recipe).
  kdrl  rlpt.algorithms.kdrl with `teacher_source="checkpoint"`: the frozen teacher is the
        exported `teacher` directory (configs/kdrl_teacher.py: the `small` preset trained
        longer; same vocabulary and tokenizer as the student). Loss: GRPO's clipped surrogate
        plus `beta_t * k2(logp, teacher_logp)` per token, token_mean, beta_t 5e-3 annealed to
        1e-3 (delta 5e-5 per step), no KD term on correct responses (kd_mask
        "incorrect_response"): the paper's defaults (rlpt/algorithms/kdrl.py DEFAULTS).
  kd    KD alone: on-policy distillation from the same teacher with no reward signal. rlpt's
        kdrl_loss has no coefficient on its policy-gradient term (rlpt/losses/policy.py,
        kdrl_loss: `clip_objective(batch, c, beta_t * kd_NT)`), so the term is switched off
        through its advantages: the reward is shaped to 0 for every response before the
        advantages (shaping `dapo_reward_pm1` with reward_correct = reward_wrong = 0), GRPO's
        (r - mean) / (std + eps) is then exactly 0 and the clipped surrogate and its gradient
        vanish; the logged `accuracy` and length metrics still read the unshaped task reward
        (rlpt.step.outcome_metrics; `reward_mean` is the shaped 0 in this arm). What remains is
        the student sampling its own responses and minimising `k2(logp, teacher_logp)` (whose
        gradient is in expectation that of the reverse KL to the teacher) on every response
        (kd_mask "none": masking by correctness would use the reward, and then it is no longer
        KD alone) with a constant unit weight (kd_beta_init = kd_beta_min = 1, delta 0): the
        KD objective on its own, not scaled by KDRL's 5e-3..1e-3, which weighs KD against the
        RL term (with Adam the scale matters little, but at 1e-3 the gradients come close to
        Adam's eps of 1e-8). Same learning rate, steps and samples as the other arms. This is
        the paper's on-policy reverse-KL KD baseline; its forward-KL KD (SFT on teacher
        samples) is not built here.
  kdrl_kd1  KDRL with the KD term of the kd arm (constant weight 1, on every response: kd_mask
        "none"), i.e. the kd arm plus GRPO's reward term; with `kd` it isolates what the reward
        adds to KD at equal KD strength (the kdrl arm's 5e-3..1e-3 weight differs from kd's 1).
        Run as a follow-up from the first sweep's SFT models, pairing seed by seed:

    python -m rlpt.sweep --config=configs/kdrl_vs_grpo.py:arms=kdrl_kd1 \
        --workdir=runs/kdrl_kd1 --sft_from=runs/kdrl_vs_grpo

The teacher must exist before the sweep runs: rlpt.sweep.main.run_sweep and rlpt.train.run check
`algo.teacher_checkpoint` before anything compiles (rlpt.algorithms.kdrl.preflight, through
rlpt.algorithms.base.check_files) and name the missing path; building the config or the points
(tests/test_config_files.py) does not read it, so this file validates without a teacher.

Arguments (after ':'): algo (grpo | kdrl | kd | kdrl_kd1, for get_config; the sweep's base is grpo or
kdrl), seeds (get_sweep: 0 .. seeds-1), arms ('/'-separated, default grpo/kdrl/kd), teacher (the
exported teacher: a HF directory, GGUF or llama2.c file; default runs/kdrl_teacher_hf, relative
to the working directory), and SCRATCHPAD_ARGS (seed, size, quick, rl_steps, sft_steps, batch,
max_new, lr, max_digits, hard_max_digits, evals,
lrs: get_sweep's '/'-separated rates, every arm at each, val_prompts: validation prompts;
experiments/lr_grid.py). Smoke (seconds per arm):

    python -m rlpt.sweep --config=configs/kdrl_vs_grpo.py:quick=1,seeds=1,teacher=DIR \
        --workdir=/tmp/kd_quick
"""
import os

from configs.recipes import SCRATCHPAD_ARGS, comparison_config, lr_axis, scratchpad_run
from rlpt.config import parse_arg

TEACHER = os.path.join("runs", "kdrl_teacher_hf")
ARGS = dict(SCRATCHPAD_ARGS, algo="grpo", seeds=3, arms="grpo/kdrl/kd", teacher=TEACHER)
ALGOS = ("grpo", "kdrl")
ARMS = ("grpo", "kdrl", "kd", "kdrl_kd1")

# KD alone (module doc), on top of the kdrl arm; the shaping comes right after the name so the
# point's name tells the arm (experiments/kdrl/analyze.py).
KD_ALONE = {"config.algo.shaping": ("dapo_reward_pm1",), "config.algo.reward_correct": 0.0,
            "config.algo.reward_wrong": 0.0, "config.algo.kd_mask": "none",
            "config.algo.kd_beta_init": 1.0, "config.algo.kd_beta_min": 1.0,
            "config.algo.kd_beta_delta": 0.0}
SHAPING_KEYS = ("config.algo.shaping", "config.algo.reward_correct", "config.algo.reward_wrong")
# the kdrl_kd1 arm: KD alone's KD term, the task reward kept
KD_EQUAL = {k: v for k, v in KD_ALONE.items() if k not in SHAPING_KEYS}
KDRL_VARIANTS = {"kd": KD_ALONE, "kdrl_kd1": KD_EQUAL}   # arms = the kdrl arm + these keys

def _args(arg: str) -> dict:
    a = parse_arg(arg, **ARGS)
    if a["algo"] not in ARMS:
        raise ValueError(f"algo={a['algo']!r}; known: {list(ARMS)}")
    return a


def get_config(arg: str = ""):
    a = _args(arg)
    base = "kdrl" if a["algo"] in KDRL_VARIANTS else a["algo"]
    c = comparison_config(base, ALGOS)   # every arm's keys: a point switches the arm
    c.algo.teacher_source = "checkpoint"  # read by the kdrl / kd arms only
    c.algo.teacher_checkpoint = a["teacher"]
    c.algo.reward_correct, c.algo.reward_wrong = 1.0, -1.0   # read only by the kd arm's shaping
    c = scratchpad_run(c, a)
    for key, value in KDRL_VARIANTS.get(a["algo"], {}).items():
        c.algo[key.split(".")[-1]] = value
    return c


def get_sweep(arg: str = ""):
    """arms x seeds 0..seeds-1: one vmapped group per arm."""
    from rlpt.sweep.points import chosen_algorithm_arms, product, seeds
    a = _args(arg)
    if a["algo"] in KDRL_VARIANTS:
        raise ValueError(f"algo={a['algo']} is for single runs (get_config); the sweep's base is "
                         "algo=grpo or algo=kdrl and that arm is in `arms`")
    wanted = [x for x in a["arms"].split("/") if x]
    unknown = [x for x in wanted if x not in ARMS]
    if unknown:
        raise ValueError(f"arms={a['arms']!r}: unknown {unknown}; known: {list(ARMS)}")
    algo_arms = dict(zip(ALGOS, chosen_algorithm_arms(a["algo"], ALGOS, "/".join(ALGOS))))
    arms = []
    for x in wanted:
        if x in KDRL_VARIANTS:   # the kdrl arm's keys, then the arm's own
            kdrl = algo_arms["kdrl"]
            arms.append({"config.algo.name": "kdrl", **KDRL_VARIANTS[x],
                         **{k: v for k, v in kdrl.items() if k != "config.algo.name"}})
        else:
            arms.append(algo_arms[x])
    return product(arms, lr_axis(a), seeds(a["seeds"]))

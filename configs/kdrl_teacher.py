"""The teacher of the KDRL experiment (experiments/kdrl/, configs/kdrl_vs_grpo.py): the `small`
preset trained longer than the students on the same scratchpad addition, then exported as a HF
directory that the sweep's KDRL arms load as their frozen teacher.

    python -m rlpt.train --config=configs/kdrl_teacher.py --workdir=runs/kdrl_teacher
    python -m rlpt.export --workdir=runs/kdrl_teacher --out=runs/kdrl_teacher_hf

The recipe is configs.recipes.scratchpad_run (1-3 digit sums with worked solutions, the character
tokenizer of the scratchpad task, 48 new tokens, 8 samples at temperature 1, no KL term) with
three changes: the `small` preset (4 layers, d_model 256: ~8x the `tiny` student's
non-embedding parameters), SFT of 600 steps x 64 worked solutions (the students get 300), then
100 GRPO steps of 16 prompts x 8 samples at lr 1e-4 (the students' RL lr is 3e-4; the larger
model is given a smaller one). `small` is the largest CPU preset of rlpt.models.config (the next
presets, bench_w1, has the same shape with QKV biases; the Qwen/Llama shapes do not fit a CPU run),
and it shares the student's vocabulary (64 ids) and the task's tokenizer, which KDRL requires: the
teacher scores the student's own tokens. Time on the 2-core CPU: 5 min 34 s (measured; held-out
greedy accuracy 0.891 after SFT, 0.992 after RL, experiments/kdrl/README.md).

The held-out evaluation (128 prompts x 8 samples, greedy accuracy and pass@1/4/8) is logged
after SFT and at the end: summary.json's after_sft / after_rl are the teacher's own accuracy.

Arguments (after ':'): SCRATCHPAD_ARGS (seed, size, quick, rl_steps, sft_steps, batch, max_new,
lr, max_digits, hard_max_digits, evals) with the defaults above; quick=1 is a seconds-long smoke
version (10 SFT + 4 RL steps), rl_steps=0 an SFT-only teacher.
"""
from configs.recipes import SCRATCHPAD_ARGS, scratchpad_run
from rlpt.config import base_config, parse_arg

ARGS = dict(SCRATCHPAD_ARGS, size="small", sft_steps=600, rl_steps=100, lr=1e-4, evals=1)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    return scratchpad_run(base_config("grpo"), a)

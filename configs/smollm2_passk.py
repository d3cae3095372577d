"""Yue et al. (arXiv 2504.13837) on a pretrained model (issue 28; experiments/smollm2_passk/): does
GRPO raise SmolLM2-135M-Instruct's pass@1 and lose at large k? pass@k for k = 1, 2, 4, ..., 256
of the base model and after RL, on one-step word problems (rlpt.tasks.word_arith `kind`).

    python -m rlpt.sweep --config=configs/smollm2_passk.py --workdir=runs/smollm2_passk
    python experiments/smollm2_passk/pilot_base.py ...      # the base model's pilot

The run is configs/smollm2_rlvr.py's (GRPO, 4 prompts x 8 samples a step, 64 new tokens, lr 5e-6,
beta 0, the verifier on the host) with the evaluation of a pass@k curve: `n_samples` draws per
held-out question at temperature 1, `chunk` at a time (eval.sample_chunk), scored on the same
draws in every seed (eval.seed = 0). The base model's evaluation is therefore the same in every
seed, and the sweep computes it once (rlpt.sweep.eval_cache): it is each run's "after SFT" row.

Arguments (after ':'): seed, seeds (get_sweep: how many, from 0), steps (RL steps), kind (the
word_arith kind), n_prompts and n_samples (the held-out evaluation), chunk, lora (a rank: LoRA in
place of the full fine-tune, configs/recipes.lora_run), checkpoint, quick (1 = a smoke run).
"""
from configs.recipes import powers_of_two
from configs.smollm2_rlvr import SMOLLM2
from configs.smollm2_rlvr import get_config as smollm2_rlvr_config
from rlpt.config import parse_arg

ARGS = dict(seed=0, seeds=3, steps=40, kind="add", n_prompts=32, n_samples=256, chunk=32,
            lora=0, checkpoint=SMOLLM2, quick=0)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = smollm2_rlvr_config(",".join(f"{k}={a[k]}" for k in ("seed", "steps", "checkpoint",
                                                               "lora", "quick")))
    c.task.kwargs.kind = a["kind"]
    n = 4 if a["quick"] else a["n_samples"]
    c.eval.n_prompts = 4 if a["quick"] else a["n_prompts"]
    c.eval.n_samples, c.eval.ks = n, powers_of_two(n)
    c.eval.sample_chunk = min(2 if a["quick"] else a["chunk"], n)
    c.eval.seed = 0
    return c


def get_sweep(arg: str = ""):
    """Seeds 0..seeds-1 (points that train alone: the reward is computed on the host)."""
    from rlpt.sweep.points import seeds
    return seeds(parse_arg(arg, **ARGS)["seeds"])

"""Reward models on 2-digit addition (rlpt.preference.reward_model_step): held-out pairwise
accuracy.

    python -m rlpt.preference.train --config=configs/rm_arith.py:kind=bt --workdir=runs/rm_bt

(`python -m rlpt.train` hands it to the same `rlpt.preference.train.run`.) Arguments (after
':'): kind (a reward-model kind k, the algorithm rm_<k> of rlpt/algorithms/: bt vrpo
rlaif_soft rluf rlsf), size (a model preset), seed,
steps (RM updates), sft (SFT warm-up steps; the RM backbone starts from the SFT model, and
vrpo / rlsf sample from it), quick (1 = a smoke version of a few steps).
"""
from rlpt.config import parse_arg
from rlpt.preference.config import preference_config


def get_config(arg: str = ""):
    a = parse_arg(arg, kind="bt", size="tiny", seed=0, steps=1000, sft=500, quick=0)
    c = preference_config("reward_model", rm_kind=a["kind"])
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=2)
    c.sampling.max_new_tokens = 5
    c.sft.steps, c.sft.batch_size, c.sft.optim.lr = a["sft"], 64, 1e-3
    c.rm.steps = a["steps"]
    c.rm.init = "sft" if a["sft"] else "random"
    c.eval.every = max(a["steps"] // 5, 1)
    if a["quick"]:
        c.sft.steps, c.rm.steps, c.eval.every, c.rm.eval_prompts = 4, 3, 3, 16
        c.rm.init = "sft"
        if "threshold" in c.rm:  # rlsf: a 4-step policy is never 0.9-confident
            c.rm.threshold = 0.0
        c.log_every = c.ckpt_every = 3
        c.wandb.mode = "disabled"
    return c

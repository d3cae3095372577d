"""Preference optimisation on 2-digit addition: SFT warm-up, then one preference algorithm.

    python -m rlpt.preference.train --config=configs/dpo_arith.py:algo=dpo --workdir=runs/dpo
    python -m rlpt.preference.train --config=configs/dpo_arith.py:algo=online_dpo,sync=4 ...

(`python -m rlpt.train` hands a preference config to the same `rlpt.preference.train.run`.)
Arguments (after ':'): algo (a preference algorithm of rlpt/algorithms/: dpo ipo cdpo rdpo
simpo pre_dpo drpo online_dpo), size (a model preset), seed, quick (1 = a smoke version of a
few steps), sync (online_dpo's sync_every: an integer s, or none = offline: pairs sampled from
the SFT model), g (drpo's preference model: task_reward or reward_model), source (synthetic or
a path to a JSONL pairs file).
Pairs (synthetic): chosen = the gold answer, rejected = a corrupted wrong answer
(rlpt.tasks.synthetic_pairs); online_dpo samples and scores its own.
"""
from rlpt.config import optim_config, parse_arg
from rlpt.preference.config import preference_config


def get_config(arg: str = ""):
    a = parse_arg(arg, algo="dpo", size="tiny", seed=0, quick=0, sync="1", g="task_reward",
                  source="synthetic")
    c = preference_config("policy", a["algo"])
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=2)
    c.sampling.max_new_tokens = 5
    c.sft.steps, c.sft.batch_size, c.sft.optim.lr = 500, 64, 1e-3
    c.pref.steps, c.pref.batch_size = 200, 32
    c.optim = optim_config(1e-4)
    c.eval.every = 50
    if a["source"] != "synthetic":
        c.pref.source, c.pref.jsonl_path, c.pref.jsonl_eval_pairs = "jsonl", a["source"], 16
    if "sync_every" in c.algo:  # online_dpo
        c.algo.sync_every = None if a["sync"].lower() in ("none", "inf") else int(a["sync"])
    if "g" in c.algo:  # drpo's preference model
        c.algo.g = a["g"]
        c.rm.steps = 300
    if a["quick"]:
        c.sft.steps, c.pref.steps, c.rm.steps, c.eval.every = 4, 3, 3, 3
        c.eval.n_prompts, c.pref.eval_pairs, c.rm.eval_prompts = 16, 16, 16
        c.log_every = c.ckpt_every = 3
        c.wandb.mode = "disabled"
    return c

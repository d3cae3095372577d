"""Online vs semi-online vs offline DPO vs GRPO (Lanchantin et al., arXiv 2506.21495; issue 27,
claim 4) on 1-2 digit addition with the task reward, one budget (experiments/online_dpo_vs_grpo/).

    python -m rlpt.sweep --config=configs/online_dpo_vs_grpo.py:what=dpo --workdir=runs/odpo_dpo
    python -m rlpt.sweep --config=configs/online_dpo_vs_grpo.py:what=grpo --workdir=runs/odpo_grpo

Every arm: the SFT warm-up of configs/dpo_arith.py and configs/grpo_arith.py (the same recipe:
500 x 64 worked solutions, lr 1e-3, 5 new tokens), then `steps` updates of `batch` prompts x 8
samples scored by the task reward, so every arm samples the same number of responses.

* `what=dpo`: online DPO (rlpt.algorithms.online_dpo: best vs worst of the 8 samples, DPO loss,
  beta 0.1) with the generator synced every step (online), every `semi` steps (semi-online) or
  never (offline: pairs sampled from the SFT model); `sync` in '/'-separated syncs (an integer
  or none).
* `what=grpo`: GRPO (beta 0.04, as configs/grpo_arith.py) on the same prompts and samples.

Both take the RL/preference learning-rate axis `lrs` ('/'-separated; one workdir per rate with
`--only` as experiments/README.md describes), so each arm is compared at its best rate.

Arguments (after ':'): what (dpo | grpo), seed, seeds (get_sweep), syncs, steps, batch, lrs,
val_prompts (validation prompts evaluated beside the held-out ones, for choosing the rate:
experiments/lr_grid.py), quick.
"""
from rlpt.config import parse_arg

ARGS = dict(what="dpo", seed=0, seeds=5, syncs="1/10/none", steps=200, batch=32, lrs="",
            val_prompts=0, quick=0)


def _sync(text: str):
    return None if text.lower() in ("none", "inf") else int(text)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    common = f"seed={a['seed']},quick={a['quick']}"
    if a["what"] == "dpo":
        from configs import dpo_arith
        first = str(a["syncs"]).split("/")[0]
        c = dpo_arith.get_config(f"algo=online_dpo,sync={first},{common}")
        if not a["quick"]:
            c.pref.steps = a["steps"]
        c.pref.batch_size = a["batch"]
    elif a["what"] == "grpo":
        from configs import grpo_arith
        c = grpo_arith.get_config(common)
        if not a["quick"]:
            c.rl.steps, c.eval.every = a["steps"], 50
        c.rl.batch_size = a["batch"]
    else:
        raise ValueError(f"online_dpo_vs_grpo: what={a['what']!r}; expected 'dpo' or 'grpo'")
    c.eval.validation_prompts = a["val_prompts"]   # rlpt.evaluation.validation
    c.wandb.mode = "disabled"
    return c


def get_sweep(arg: str = ""):
    """(syncs for what=dpo) x learning rates x seeds 0..seeds-1."""
    from configs.recipes import lr_axis
    from rlpt.sweep.points import axis, product, seeds
    a = parse_arg(arg, **ARGS)
    arms = ([{}] if a["what"] == "grpo" else
            axis("config.algo.sync_every", [_sync(x) for x in str(a["syncs"]).split("/") if x]))
    return product(arms, lr_axis(a), seeds(a["seeds"]))

"""Greedy completions of one sweep point's policy on the held-out set, from its group's newest
RL checkpoint (a look at what a run learned, e.g. experiments/one_shot_rlvr/README.md):

    python scripts/show_completions.py runs/one_shot_rlvr 'task.kwargs.index=29,seed=0' --n 12

Reads <sweep>/sweep.json (which group, and which run of it, the point is) and the point's
resolved config (points/<name>/config.json: model, task, sampling), restores
the group's stacked params (groups/g<i>/ckpt/rl/<newest step>; a group whose points ran one after
another: the point's own, rlpt.io.checkpoints.restore_params of points/<name>) and prints `prompt -> completion
(answer)` for the first `--n` held-out prompts.
"""
import argparse
import json
import os
import sys

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlpt.sampling import SamplingConfig, sample  # noqa: E402
from rlpt.build import build_model, build_task  # noqa: E402
from rlpt.io.checkpoints import checkpoint_steps, restore_params  # noqa: E402


def prompt_text(task, batch, i, tail=100):
    """The task's own rendering of prompt i, else its decoded tokens, end-of-turn tokens included
    (a chat-templated prompt: the last `tail` characters, where the question is)."""
    if hasattr(task, "decode_prompt"):
        return task.decode_prompt(batch["prompt"][i])
    text = task.tokenizer.decode([int(t) for t, m in zip(batch["prompt"][i],
                                                         batch["prompt_mask"][i]) if m],
                                stop_at_eos=False)
    return repr(text[-tail:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("point", help="the point's name (its directory under points/)")
    ap.add_argument("--n", type=int, default=12)
    a = ap.parse_args(argv)
    saved = json.load(open(os.path.join(a.sweep_dir, "sweep.json")))
    group = next((g for g in saved["groups"] if a.point in g["points"]), None)
    if group is None:
        raise SystemExit(f"{a.sweep_dir}/sweep.json: no point {a.point!r}")
    run = group["points"].index(a.point)
    cfg = ml_collections.ConfigDict(json.load(open(os.path.join(a.sweep_dir, "points", a.point,
                                                                "config.json"))))
    model_cfg, init = build_model(cfg)
    if group.get("vmapped", True):   # the group's stacked params: this point's run of them
        ckpt = os.path.join(os.path.abspath(a.sweep_dir), "groups", f"g{group['index']:03d}",
                            "ckpt", "rl")
        step = checkpoint_steps(ckpt)[0]
        tree = ocp.PyTreeCheckpointer().restore(os.path.join(ckpt, str(step), "default"))
        leaves = [np.asarray(x)[run] for x in jax.tree_util.tree_leaves(tree["params"])]
        params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(init), leaves)
    else:   # a point run alone checkpoints in its own directory, as a single run
        _, step, params = restore_params(os.path.join(a.sweep_dir, "points", a.point),
                                         model_cfg, "rl")
    task = build_task(cfg)
    b = task.eval_set(cfg.eval.n_prompts)
    scfg = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, greedy=True,
                          stop_tokens=tuple(cfg.sampling.stop_tokens))
    out = sample(model_cfg, params, b["prompt"][:a.n], b["prompt_mask"][:a.n],
                 jax.random.PRNGKey(0), scfg)
    print(f"{a.point}: group g{group['index']:03d} run {run}, RL checkpoint step {step}")
    for i in range(min(a.n, len(b["prompt"]))):
        text = task.tokenizer.decode([int(t) for t, m in zip(out.tokens[i], out.mask[i]) if m])
        answer = task.tokenizer.decode(b["target"][i][:int(b["target_len"][i])])
        print(f"{prompt_text(task, b, i)} -> {text}   ({answer})")


if __name__ == "__main__":
    main()

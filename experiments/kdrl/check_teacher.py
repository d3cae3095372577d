"""Checks an exported KDRL teacher before the sweep uses it (experiments/kdrl/README.md):

    python experiments/kdrl/check_teacher.py --run=runs/kdrl_teacher --hf=runs/kdrl_teacher_hf

1. round trip: `rlpt.models.load_checkpoint(HF)` (what the KDRL arms call, rlpt.algorithms.kdrl)
   gives the run's model shape and exactly the parameters of the run's newest checkpoint
   (rlpt.export.restore_params), and the same logits on a batch of the task's prompts;
2. one vocabulary: the teacher's vocabulary is the student's (`--student` preset, the sweep's
   `tiny`) and holds every id of the task's tokenizer, the stop and pad ids (KDRL scores the
   student's own tokens with the teacher);
3. the teacher's held-out accuracy as the run logged it (its summary.json), when there is one.
Exits non-zero with the failed check's line.
"""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="the teacher's rlpt.train workdir")
    ap.add_argument("--hf", required=True, help="its rlpt.export directory")
    ap.add_argument("--student", default="tiny", help="the students' preset")
    a = ap.parse_args(argv)

    from rlpt.export import restore_params, run_model_config
    from rlpt.models import forward, get_model_config, load_checkpoint
    from rlpt.models.loaders import read_json_file
    from rlpt.registry import get

    run = read_json_file(os.path.join(a.run, "config.json"))
    run_cfg = run_model_config(run)
    t_cfg, t_params = load_checkpoint(a.hf, run["model"].get("dtype", "float32"))
    fails = []
    shape = lambda c: (c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.n_kv_heads, c.d_ff, c.hd)
    if shape(t_cfg) != shape(run_cfg):
        fails.append(f"shape: exported {shape(t_cfg)} != run {shape(run_cfg)}")
    phase, step, r_params = restore_params(a.run, run_cfg)
    flat_t = dict(jax.tree_util.tree_leaves_with_path(t_params))
    flat_r = dict(jax.tree_util.tree_leaves_with_path(r_params))
    if set(flat_t) != set(flat_r):
        fails.append(f"parameter names differ: {sorted(map(str, set(flat_t) ^ set(flat_r)))[:5]}")
    else:
        worst = max(float(np.max(np.abs(np.asarray(flat_t[k]) - np.asarray(flat_r[k]))))
                    for k in flat_t)
        print(f"params: {len(flat_t)} arrays, max |exported - ckpt/{phase}/{step}| = {worst:.3g}")
        if worst > 1e-6:
            fails.append(f"parameters differ from ckpt/{phase}/{step} by up to {worst:.3g}")

    task = get("task", run["task"]["name"])(**(run["task"].get("kwargs") or {}))
    prompts = task.eval_set(8)["prompt"]
    tokens = jnp.asarray(prompts)
    valid = tokens != int(run["sampling"].get("pad_id", 0))
    lt = forward(t_cfg, jax.tree_util.tree_map(jnp.asarray, t_params), tokens, valid)
    lr = forward(run_cfg, jax.tree_util.tree_map(jnp.asarray, r_params), tokens, valid)
    dlogit = float(jnp.max(jnp.abs(jnp.where(valid[..., None], lt - lr, 0.0))))
    print(f"logits on {tokens.shape[0]} held-out prompts: max |exported - run| = {dlogit:.3g}")
    if dlogit > 1e-4:
        fails.append(f"logits differ by up to {dlogit:.3g}")

    s_cfg = get_model_config(a.student)
    tok = getattr(task, "tokenizer", None)
    tok_size = int(getattr(tok, "vocab_size", 0) or 0)
    ids = [int(i) for i in run["sampling"].get("stop_tokens", ())] + [
        int(run["sampling"].get("pad_id", 0)), int(np.max(prompts))]
    print(f"vocabulary: teacher {t_cfg.vocab_size}, student ({a.student}) {s_cfg.vocab_size}, "
          f"task tokenizer {tok_size or 'unknown'}, largest id used {max(ids)}")
    if t_cfg.vocab_size != s_cfg.vocab_size:
        fails.append(f"teacher vocabulary {t_cfg.vocab_size} != student's {s_cfg.vocab_size}")
    if tok_size > t_cfg.vocab_size or max(ids) >= t_cfg.vocab_size:
        fails.append("the task's ids do not fit the teacher's vocabulary")

    summary = os.path.join(a.run, "summary.json")
    if os.path.exists(summary):
        s = json.load(open(summary))
        for which in ("after_sft", "after_rl"):
            e = s.get(which, {})
            print(f"teacher held-out {which} (RL step {e.get('step')}): " + ", ".join(
                f"{k}={e[k]:.3f}" for k in ("greedy_acc", "pass@1", "pass@8") if k in e))
    if fails:
        sys.exit("check_teacher FAILED: " + "; ".join(fails))
    print(f"check_teacher: OK ({a.hf} is {a.run}'s ckpt/{phase}/{step})")


if __name__ == "__main__":
    main()

"""Measures the base model's greedy accuracy and pass@8 on candidate tasks (task selection).

    python experiments/smollm2_rlvr/select_task.py --n 32 --out experiments/smollm2_rlvr/select.jsonl
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import jax  # noqa: E402

from rlpt.models import load_checkpoint  # noqa: E402
from rlpt.tokenizers import load_tokenizer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--checkpoint", default=os.path.join(common.ROOT, "..", "shared", "data",
                                                     "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
ap.add_argument("--n", type=int, default=32)
ap.add_argument("--candidates", default="word:add|,word:plain_add|,gsm8k_easy|")
ap.add_argument("--max_new_tokens", type=int, default=64)
ap.add_argument("--out", required=True)
a = ap.parse_args()
mcfg, params = load_checkpoint(a.checkpoint)
params = jax.tree_util.tree_map(jax.numpy.asarray, params)
tok = load_tokenizer(a.checkpoint)
for cand in a.candidates.split(","):
    task, instruction = cand.split("|")
    t = time.time()
    rows = common.task_rows(task, "eval", a.n, seed=0)
    r = common.evaluate(mcfg, params, tok, rows, instruction, max_new_tokens=a.max_new_tokens,
                        k=8, seed=0, chunk=8, stop_tokens=(tok.eos_id,), show=3)
    r.update(task=task, instruction=instruction, max_new_tokens=a.max_new_tokens,
             seconds=round(time.time() - t, 1), load=os.getloadavg()[0])
    common.log(a.out, r)

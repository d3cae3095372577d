"""Measures the base model's greedy accuracy and pass@8 on candidate tasks (task selection).

    python experiments/smollm2_rlvr/select_task.py --n 32 --out /tmp/select.jsonl

A candidate is a `kind` of rlpt.tasks.word_arith and an instruction appended to each question
(`kind|instruction`). The numbers are rlpt.train's held-out evaluation
(rlpt.evaluation.rollout.evaluate) of configs/smollm2_rlvr.py before any training, on the task's
first n held-out questions: greedy accuracy and unbiased pass@k from 8 samples at temperature 1,
64 new tokens. select.jsonl is the output of the first version of this script (commit
d500d3b, its own sampling code), which also measured GSM8K's 32 shortest training solutions
(`gsm8k_easy`: not a word_arith kind, dropped here).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from rlpt.build import build_model, build_task  # noqa: E402
from rlpt.config import load_config, validate  # noqa: E402
from rlpt.evaluation.rollout import evaluate  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--checkpoint", default="", help="default: the config's (SmolLM2 GGUF)")
ap.add_argument("--n", type=int, default=32)
ap.add_argument("--candidates", default="add|,add_small|,add|Answer with just the final number.,"
                                        "plain_add|")
ap.add_argument("--out", required=True)
a = ap.parse_args()
arg = f"checkpoint={a.checkpoint}" if a.checkpoint else ""
cfg = validate(load_config(os.path.join(ROOT, "configs", "smollm2_rlvr.py") + ":" + arg))
cfg.eval.n_prompts = a.n
model_cfg, params = build_model(cfg)
for cand in a.candidates.split(","):
    kind, instruction = cand.split("|")
    t = time.time()
    cfg.task.kwargs.kind, cfg.task.kwargs.instruction = kind, instruction
    task = build_task(cfg)
    r = evaluate(model_cfg, params, task, cfg, task.eval_set(a.n))
    r.update(n=a.n, kind=kind, instruction=instruction,
             max_new_tokens=cfg.sampling.max_new_tokens, seconds=round(time.time() - t, 1),
             load=os.getloadavg()[0])
    print(json.dumps(r), flush=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(r) + "\n")

"""Pilot of the base model for the pass@k experiment on SmolLM2-135M-Instruct (issue 28): how
often the pretrained model solves each held-out question, to pick the task and its difficulty.

    python experiments/smollm2_passk/pilot_base.py --kinds add,add_small --n 32 --samples 256 \
        --out experiments/smollm2_passk/pilot_base.jsonl

For each `kind` of rlpt.tasks.word_arith: the held-out evaluation of configs/smollm2_passk.py
before any training (rlpt.evaluation.rollout: greedy and `samples` draws per question at
temperature 1, `--chunk` at a time), on the task's first n held-out questions. One JSON line per
kind: greedy accuracy, unbiased pass@k for k = 1, 2, 4, ..., samples, the number of questions
with 0 correct draws, each question's count of correct draws, and the wall time and load
average (the machine is shared). `--questions` evaluates a subset of the n questions and
`--max_new` another answer length (e.g. the questions the base model never solved, with twice
the room: is their failure the 64-token limit?).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from rlpt.build import build_model, build_task  # noqa: E402
from rlpt.config import load_config, validate  # noqa: E402
from rlpt.evaluation.rollout import (eval_metrics, eval_rng, eval_seed, eval_settings,  # noqa
                                     jitted_eval_rewards)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="add,add_small")
    ap.add_argument("--n", type=int, default=32, help="held-out questions")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=32, help="draws per question at a time")
    ap.add_argument("--max_new", type=int, default=0,
                    help="new tokens per answer (0: the config's, 64)")
    ap.add_argument("--questions", default="",
                    help="comma-separated indices among the first n held-out questions: "
                         "evaluate only those (e.g. the base model's unsolved ones)")
    ap.add_argument("--out", required=True, help="JSON lines, appended")
    a = ap.parse_args(argv)
    ks = tuple(2 ** i for i in range(int(np.log2(a.samples)) + 1))
    for kind in a.kinds.split(","):
        cfg = load_config(os.path.join(ROOT, "configs", "smollm2_passk.py") + f":kind={kind}")
        cfg.eval.n_prompts, cfg.eval.n_samples, cfg.eval.ks = a.n, a.samples, ks
        cfg.eval.sample_chunk = a.chunk
        if a.max_new:
            cfg.sampling.max_new_tokens = a.max_new
        cfg = validate(cfg)
        task = build_task(cfg)
        model_cfg, params = build_model(cfg)
        batch = task.eval_set(a.n)
        picked = [int(i) for i in a.questions.split(",") if i] or list(range(a.n))
        batch = {k: np.asarray(v)[picked] for k, v in batch.items()}
        t = time.time()
        fn = jitted_eval_rewards(model_cfg, task.reward, eval_settings(cfg))
        rewards = jax.device_get(fn(params, eval_rng(eval_seed(cfg)), batch))
        res = eval_metrics(rewards, batch, cfg)
        counts = (np.asarray(rewards["samples"]).reshape(len(picked), a.samples) > 0.5).sum(1)
        res.update(kind=kind, n=a.n, questions=picked, samples=a.samples, chunk=a.chunk,
                   max_new_tokens=cfg.sampling.max_new_tokens,
                   unsolved=int((counts == 0).sum()), correct_per_question=counts.tolist(),
                   seconds=round(time.time() - t, 1), load=round(os.getloadavg()[0], 2))
        print(json.dumps(res), flush=True)
        with open(a.out, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()

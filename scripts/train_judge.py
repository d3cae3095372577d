"""Trains a small judge (generative verifier, arXiv 2408.15240) for a synthetic arithmetic task and
writes it as a HF checkpoint that `cfg.reward.judge.checkpoint` can load.

    python scripts/train_judge.py --out runs/judge_add1 --steps 1000
    python -m rlpt.train --config=configs/grpo_judge.py:judge=runs/judge_add1 --workdir=...

The judge sees `<bos>12+34=46?` (the template of `rlpt.rewards.judge.judge_config()`) and is
trained on the verdict token (`y` for the gold answer, `n` for a wrong one: near misses, far
numbers, empty answers, `--negatives`; `rlpt.rewards.judge_train`). Printed before and after
training, on 512 held-out prompts (eval seed) with the gold answer and a near miss (gold +-
1..10): verdict accuracy at 0.5, the share of prompts where the judge scores the gold answer
above the near miss, and the mean scores, all through `judge_reward` (the reward the RL step
uses, reading the judge params from the frozen models as `frozen["judge"]`).
"""
import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlpt.models import get_model_config, init_params  # noqa: E402
from rlpt.models.loaders import save_hf_checkpoint  # noqa: E402
from rlpt.rewards.judge import judge_config, judge_ids, judge_reward  # noqa: E402
from rlpt.rewards.judge_train import (NEGATIVES, answer_completions,  # noqa: E402
                                       train_verifier)
from rlpt.rewards.prompt_target import prompt_as_target  # noqa: E402
from rlpt.tasks.synthetic import AdditionTask, EVAL_SEED  # noqa: E402


def held_out_ranking(model_cfg, params, task, ids, n=512, pad=0):
    """(verdict accuracy at 0.5, share of prompts with score(gold) > score(wrong), mean scores);
    `pad` > 0: both answers written zero-padded to `pad` digits."""
    tok = task.tokenizer
    raw = task.make_batch(EVAL_SEED, 0, n)
    b = prompt_as_target(raw)
    gold = [int(tok.decode(raw["target"][i][: raw["target_len"][i]])) for i in range(n)]
    rng = np.random.default_rng(0)
    wrong = [g - d if g >= d and rng.random() < 0.5 else g + d
             for g, d in zip(gold, rng.integers(1, 11, n))]
    reward = jax.jit(judge_reward(model_cfg, ids, stop_tokens=(tok.eos_id,)))
    judge = lambda *a: reward({"judge": params}, *a)
    width = task.target_width + 2
    form = lambda xs: [str(x).zfill(pad) for x in xs]
    s_gold = np.asarray(judge(*answer_completions(tok, form(gold), width), b["target"],
                              b["target_len"])[0])
    s_wrong = np.asarray(judge(*answer_completions(tok, form(wrong), width), b["target"],
                               b["target_len"])[0])
    acc = (np.mean(s_gold > 0.5) + np.mean(s_wrong <= 0.5)) / 2
    return float(acc), float(np.mean(s_gold > s_wrong)), float(s_gold.mean()), float(s_wrong.mean())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="directory for config.json + model.safetensors")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--min_digits", type=int, default=1)
    ap.add_argument("--max_digits", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--negatives", default=",".join(NEGATIVES),
                    help="kinds of wrong answers to train on: near,far,empty")
    ap.add_argument("--padded_fraction", type=float, default=0.0,
                    help="share of training answers written zero-padded (`046`), right ones "
                         "labelled right: the judge learns that equivalence")
    args = ap.parse_args(argv)
    task = AdditionTask(args.min_digits, args.max_digits)
    pads = [0] + ([task.target_width] if args.padded_fraction else [])
    ids = judge_ids(judge_config(), task.tokenizer)
    model_cfg = get_model_config(args.preset)
    params = init_params(model_cfg, jax.random.PRNGKey(args.seed))
    print(f"judge {args.preset} ({model_cfg.num_params():,} params) on addition "
          f"{args.min_digits}..{args.max_digits} digits, negatives {args.negatives}, padded "
          f"answers {args.padded_fraction}")

    def report(when, params):
        for pad in pads:
            print(f"{when}, held-out near misses (gold vs gold +- 1..10)"
                  f"{' zero-padded' if pad else ''}: acc %.3f ranked %.3f (gold %.3f, wrong %.3f)"
                  % held_out_ranking(model_cfg, params, task, ids, pad=pad))
    report("before training", params)
    t0 = time.time()
    params, _ = train_verifier(model_cfg, params, task, ids, args.steps, args.batch_size,
                               args.lr, seed=args.seed, log_every=max(args.steps // 10, 1),
                               negatives=tuple(args.negatives.split(",")),
                               padded_fraction=args.padded_fraction)
    print(f"trained {args.steps} steps in {time.time() - t0:.1f}s")
    report("after training", params)
    save_hf_checkpoint(args.out, model_cfg, jax.device_get(params))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

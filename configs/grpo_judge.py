"""GRPO on 1-digit addition with a frozen LM judge as the only reward (rlpt.rewards.judge).

    python scripts/train_judge.py --out runs/judge_add1
    python -m rlpt.train --config=configs/grpo_judge.py:judge=runs/judge_add1 \
        --workdir=runs/grpo_judge

The policy never sees the task's verifier during RL: the reward is the judge's
p(y) / (p(y) + p(n)) after `<bos>3+4=7?`. Evaluation (greedy accuracy, pass@k) still uses the
task's exact-match reward, so it measures what the judge's reward bought.

Arguments (after ':'): judge (a HF judge directory; empty = a random `tiny` judge, for smoke
runs only), size (policy preset), seed, quick (1 = a seconds-long smoke version).
"""
from rlpt.config import base_config, parse_arg
from rlpt.rewards.judge import judge_config


def get_config(arg: str = ""):
    a = parse_arg(arg, judge="", size="tiny", seed=0, quick=0)
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "addition"
    c.task.kwargs = dict(min_digits=1, max_digits=1)
    c.sampling.max_new_tokens = 4
    c.sampling.num_samples = 8
    c.algo.beta = 0.0
    c.reward.kind = "judge"
    c.reward.judge = (judge_config(checkpoint=a["judge"]) if a["judge"]
                      else judge_config(preset="tiny"))
    c.rl.steps = 100
    c.rl.batch_size = 16
    c.optim.lr = 5e-4
    c.sft.steps = 60
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = 25
    c.eval.n_prompts = 256
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 2, 2, 2, 8
        c.log_every = c.ckpt_every = 2
    return c

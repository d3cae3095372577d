"""GRPO with a verifiable reward on SmolLM2-135M-Instruct (issue 14; experiments/smollm2_rlvr).

    python experiments/smollm2_rlvr/run.py --config=configs/smollm2_rlvr.py --workdir=runs/smollm2_rlvr
    python experiments/smollm2_rlvr/run.py --config=configs/smollm2_rlvr.py:seed=1 --workdir=...

The policy is a pretrained chat model read with `rlpt.models.load_checkpoint` (a GGUF file, a HF
directory or a llama2.c .bin); prompts are rendered with the checkpoint's OWN chat template
(`rlpt.tokenizers.load_tokenizer(...).apply_chat_template`); completions end at the tokenizer's
eos; the reward is 1 when `rlpt.rewards.math_answer.gsm8k_reward` finds the gold number in the
completion (\\boxed{}, `####`, "the answer is", else the last number).

For Qwen2.5-0.5B-Instruct on a GPU copy this file and change only `model.checkpoint` (a HF
directory) and the batch sizes (`rl.batch_size`, `eval.chunk`, `eval.gsm8k_chunk`): the
tokenizer, chat template, eos and pad come from the checkpoint.

Arguments (after ':'): seed, steps, checkpoint, quick (1 = a smoke run: 2 steps, tiny evals).
"""
import os

from rlpt.config import base_config, parse_arg

SMOLLM2 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                       "shared", "data", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def get_config(arg: str = ""):
    a = parse_arg(arg, seed=0, steps=40, checkpoint=SMOLLM2, quick=0)
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.checkpoint = a["checkpoint"]
    c.model.dtype = "float32"
    # task: short one-step word problems ("Leo has 9 shells. Leo gets 6 more shells. How many
    # shells does Leo have now?"), chosen because the base model's pass@8 on them is 41%
    # (greedy 16%; experiments/smollm2_rlvr/select.jsonl)
    c.task.name = "word_arith"
    c.task.kwargs = dict(kind="add_small", n_train=4000, instruction="")
    c.sampling.max_new_tokens = 64
    c.sampling.num_samples = 8          # G
    c.sampling.temperature = 1.0
    c.algo.beta = 0.0                   # no reference model (as DAPO / Dr. GRPO)
    c.rl.steps = a["steps"]
    c.rl.batch_size = 4                 # prompts per step (x G completions)
    c.optim.lr = 5e-6
    c.optim.warmup_steps = 5
    c.optim.max_grad_norm = 1.0
    c.eval.n_prompts = 64               # held-out word problems (disjoint seed)
    c.eval.n_samples = 8                # pass@8
    c.eval.chunk = 16                   # prompts per sampling call
    c.eval.gsm8k_n = 200                # GSM8K test problems (transfer / harm)
    c.eval.gsm8k_max_new_tokens = 256
    c.eval.gsm8k_chunk = 50
    c.eval.every = 10 ** 9              # evaluations only before and after training
    if a["quick"]:
        c.rl.steps, c.sampling.max_new_tokens = 2, 16
        c.eval.n_prompts, c.eval.chunk, c.eval.gsm8k_n, c.eval.gsm8k_chunk = 4, 4, 4, 4
        c.eval.gsm8k_max_new_tokens = 16
    return c

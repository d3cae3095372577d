"""GRPO with a verifiable reward on SmolLM2-135M-Instruct (issue 14; experiments/smollm2_rlvr).

    python -m rlpt.train --config=configs/smollm2_rlvr.py --workdir=runs/smollm2_rlvr
    python -m rlpt.train --config=configs/smollm2_rlvr.py:quick=1 --workdir=runs/smollm2_quick
    python -m rlpt.export --workdir=runs/smollm2_quick --out=exported/smollm2_quick

The policy is a pretrained chat model read with `rlpt.models.load_checkpoint` (a GGUF file, a HF
directory or a llama2.c .bin); the task is rlpt.tasks.word_arith (one-step word problems) with
the checkpoint's own tokenizer and chat template (`task.kwargs.tokenizer_path` = the checkpoint);
completions end at its eos; the reward is 1 when `rlpt.rewards.math_answer.gsm8k_reward` finds
the gold number in the completion (\\boxed{}, `####`, "the answer is", else the last number),
computed on the host between the rollout and the update (`reward.kind="split"`). The held-out
evaluation (greedy accuracy, pass@k) runs before the first and after the last step.

The same run for Qwen2.5-Instruct at real lengths, with the memory features on, is
configs/qwen_rlvr.py (one command on a GPU; `python -m rlpt.shapes` compiles it on a CPU first).

Arguments (after ':'): seed, steps, checkpoint, quick (1 = a smoke run: 2 steps of 2 prompts x 4
samples, 16 new tokens, 4 held-out questions x 2 samples), lora (a rank > 0 trains LoRA adapters
of rank `lora` on every projection instead of the full model: alpha = 2 x rank and a learning
rate 10x the full fine-tune's, the usual LoRA rule (Schulman et al., "LoRA Without Regret",
Thinking Machines 2025), not tuned here). A checkpoint is saved every
ckpt_every steps and after the last one (what rlpt.export reads).
"""
import os

from configs.recipes import lora_run
from rlpt.config import base_config, parse_arg

SMOLLM2 = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "shared", "data", "smollm2",
                                        "SmolLM2-135M-Instruct.Q4_1.gguf"))


def get_config(arg: str = ""):
    a = parse_arg(arg, seed=0, steps=40, checkpoint=SMOLLM2, quick=0, lora=0)
    from rlpt.tokenizers import load_tokenizer
    tok = load_tokenizer(a["checkpoint"])  # its eos ends completions, its pad pads prompts
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.checkpoint = a["checkpoint"]
    c.model.dtype = "float32"
    # task: short one-step word problems ("Leo has 9 shells. Leo gets 6 more shells. How many
    # shells does Leo have now?"), chosen because the base model's pass@8 on them is 41%
    # (greedy 16%; experiments/smollm2_rlvr/select.jsonl)
    c.task.name = "word_arith"
    c.task.kwargs = dict(tokenizer_path=a["checkpoint"], kind="add_small", n_train=4000,
                         instruction="")
    c.sampling.stop_tokens = (tok.eos_id,)
    c.sampling.pad_id = tok.pad_id
    c.sampling.max_new_tokens = 64
    c.sampling.num_samples = 8          # G
    c.sampling.temperature = 1.0
    c.reward.kind = "split"             # the verifier on the host between rollout and update
    c.algo.beta = 0.0                   # no reference model (as DAPO / Dr. GRPO)
    c.rl.steps = a["steps"]
    c.rl.batch_size = 4                 # prompts per step (x G completions)
    c.optim.lr = 5e-6
    c.optim.warmup_steps = 5
    c.optim.max_grad_norm = 1.0
    c.eval.n_prompts = 64               # held-out word problems (disjoint seed)
    c.eval.n_samples = 8                # pass@8
    c.eval.ks = (1, 2, 4, 8)
    c.eval.every = 10 ** 9              # evaluations only before and after training
    c.log_every = 1
    c.ckpt_every = 10                   # and after the last step (2 kept, 1.6 GB each)
    lora_run(c, a["lora"])
    if a["quick"]:
        c.rl.steps, c.rl.batch_size, c.sampling.num_samples = 2, 2, 4
        c.sampling.max_new_tokens = 16
        c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 4, 2, (1, 2)
    return c

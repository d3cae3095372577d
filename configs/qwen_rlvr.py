"""GRPO on word problems with Qwen2.5-Instruct at the lengths users train: the run of
configs/smollm2_rlvr.py (task rlpt.tasks.word_arith in the checkpoint's chat template, the
verifier on the host between rollout and update) with every memory feature on (docs/memory.md).

On a GPU machine, with a Qwen2.5-Instruct HF directory:

    python -m rlpt.train --config=configs/qwen_rlvr.py:checkpoint=/models/Qwen2.5-0.5B-Instruct \
        --workdir=runs/qwen_rlvr

Anywhere, before renting one (no weights read or allocated: rlpt.shapes compiles the step from
the preset's shapes and prints its memory; on CPU remat needs the XLA flag):

    XLA_FLAGS=--xla_disable_hlo_passes=cse_barrier_expander python -m rlpt.shapes \
        --config=configs/qwen_rlvr.py --workdir=runs/qwen_rlvr_shapes

Arguments (after ':'): checkpoint (a Qwen2.5-Instruct HF directory; needed to train, not to
compile from shapes), preset (qwen2.5-0.5b, qwen2.5-1.5b or qwen2.5-7b: the checkpoint's
architecture), new_tokens (1024), prompts (8 per step), samples (G = 8), grad_accum (8: one prompt
group per microbatch), lora (16; 0 = full fine-tune), steps, seed. With the defaults (0.5B,
1,024 new tokens, one device) `python -m rlpt.shapes` printed temp 6.04 GB + arguments 1.09 GB =
7.14 GB (XLA:CPU's buffer assignment, compiled in 101 s on a 2-core CPU). The learning rates
follow the SmolLM2 run's rule (LoRA 10x full) and are not tuned for Qwen.
"""
from configs.recipes import lora_run
from rlpt.config import base_config, parse_arg

# Qwen2.5-Instruct's chat turns end with <|im_end|>; <|endoftext|> pads (its tokenizer_config)
QWEN_IM_END, QWEN_ENDOFTEXT = 151645, 151643


def get_config(arg: str = ""):
    a = parse_arg(arg, checkpoint="", preset="qwen2.5-0.5b", new_tokens=1024, prompts=8,
                  samples=8, grad_accum=8, lora=16, steps=200, seed=0)
    c = base_config("grpo")
    c.seed = a["seed"]
    c.model.preset = a["preset"]
    c.model.checkpoint = a["checkpoint"]
    c.model.dtype = "bfloat16"
    c.model.remat = "block"
    c.model.attention, c.model.attention_block = "blockwise", 512
    c.model.logits_chunk = 128
    c.task.name = "word_arith"
    c.task.kwargs = dict(tokenizer_path=a["checkpoint"], kind="add_small", n_train=4000,
                         instruction="")
    c.sampling.stop_tokens = (QWEN_IM_END,)
    c.sampling.pad_id = QWEN_ENDOFTEXT
    c.sampling.max_new_tokens = a["new_tokens"]
    c.sampling.num_samples = a["samples"]
    c.reward.kind = "split"
    c.algo.beta = 0.0
    c.rl.steps = a["steps"]
    c.rl.batch_size = a["prompts"]
    c.rl.grad_accum = a["grad_accum"]
    c.optim.lr = 1e-6
    c.optim.warmup_steps = 10
    lora_run(c, a["lora"])
    c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 128, 8, (1, 2, 4, 8)
    c.eval.every = 50
    c.log_every = 1
    c.ckpt_every = 50
    return c

"""GRPO on GSM8K prompts with the host math verifier, for a real model and its tokenizer.

    python -m rlpt.train --config=configs/grpo_gsm8k.py:model=/ckpt/Qwen2.5-0.5B-Instruct \
        --workdir=runs/gsm8k
    python -m rlpt.train --config=configs/grpo_gsm8k.py:tokenizer=/tmp/tok.json,quick=1 \
        --workdir=runs/gsm8k_smoke        # random `tiny` model with that tokenizer's vocabulary

Arguments (after ':'):
  model      a HF checkpoint directory (config.json + *.safetensors); its tokenizer.json is used
             unless `tokenizer` is given. Empty: a random `preset` model with the tokenizer's
             vocabulary (smoke tests / CI only: it will score ~0).
  tokenizer  a HF tokenizer.json (required without `model`).
  template   a prompt template of rlpt.tasks.prompts (`qwen2_chat` asks for \\boxed{}; `plain`
             is `Question: ...\\nAnswer:`); eos/pad: the token strings that end a completion /
             pad prompts (default: Qwen2.5 instruct's `<|im_end|>` / `<|endoftext|>`).
  preset, seed, quick (1 = 2 RL steps, small batches, no SFT), max_rows (0 = all train rows),
  data_dir (where the TFDS dataset is prepared; default ~/tensorflow_datasets).

The reward is `gsm8k_reward` on decoded strings through `host_reward_callback` inside the fused
step (`reward.kind="host"`); the task is rlpt.tasks.gsm8k (TFDS data source, prompt
buckets). On a CPU only `quick=1` is practical.
"""
import os

import ml_collections

from rlpt.config import base_config, parse_arg


def get_config(arg: str = ""):
    a = parse_arg(arg, model="", tokenizer="", template="qwen2_chat", eos="<|im_end|>",
                  pad="<|endoftext|>", preset="tiny", seed=0, quick=0, max_rows=0, data_dir="")
    tok_path = a["tokenizer"] or (os.path.join(a["model"], "tokenizer.json") if a["model"] else "")
    if not tok_path:
        raise ValueError("configs/grpo_gsm8k.py: give model=<HF dir> or tokenizer=<tokenizer.json>")
    from rlpt.tokenizers import HFTokenizer
    tok = HFTokenizer(tok_path, eos_token=a["eos"], pad_token=a["pad"] or None)

    c = base_config("grpo")
    c.seed = a["seed"]
    if a["model"]:
        c.model.checkpoint = a["model"]
        c.model.dtype = "bfloat16"
    else:
        c.model.preset, c.model.vocab_size = a["preset"], tok.vocab_size
    c.task.name = "gsm8k"
    c.task.kwargs = ml_collections.ConfigDict(dict(
        tokenizer_path=tok_path, template=a["template"], bucket_sizes=(256,), answer_width=16,
        solution_len=320, eos_token=a["eos"], pad_token=a["pad"], max_rows=a["max_rows"],
        data_dir=a["data_dir"]))
    c.sampling.stop_tokens = (tok.eos_id,)
    c.sampling.pad_id = tok.pad_id
    c.sampling.max_new_tokens = 400
    c.sampling.num_samples = 8
    c.reward.kind = "host"
    c.algo.beta = 0.0
    c.rl.steps = 200
    c.rl.batch_size = 8
    c.optim.lr = 1e-6
    c.sft.steps = 0
    c.eval.every = 50
    c.eval.n_prompts = 128
    c.eval.n_samples = 4
    c.eval.ks = (1, 4)
    if a["quick"]:
        c.rl.steps, c.rl.batch_size, c.sampling.num_samples = 2, 2, 2
        c.sampling.max_new_tokens = 16
        c.eval.every, c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 2, 4, 2, (1, 2)
        c.log_every = c.ckpt_every = 1
        c.optim.lr = 1e-4
    return c

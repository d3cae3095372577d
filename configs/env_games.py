"""GRPO on a multi-turn Python environment (rlpt.envs.examples) with SmolLM2-135M-Instruct through
its chat template: every policy turn continues the conversation's KV cache, the environment's
replies are rendered by the template and excluded from the loss (issue 26; docs/environments.md).

    python -m rlpt.train --config=configs/env_games.py:game=guess_number --workdir=runs/guess
    python -m rlpt.train --config=configs/env_games.py:game=wordle,quick=1 --workdir=runs/w_q

    python -m rlpt.train --config=configs/env_games.py:game=reasoning_gym,dataset=chain_sum ...

Arguments (after ':'): game (guess_number (1..10, 4 guesses) | wordle | two_tools |
reasoning_gym: any reasoning-gym dataset,
single turn, its score_answer as the reward; needs `pip install rlpt[envs]`), dataset (the
reasoning-gym dataset name), seed, steps, checkpoint (a GGUF file or HF
directory with a chat template), lora (rank; 0 = full fine-tune), quick (1 = a smoke run: 2 steps
of 2 prompts x 2 samples, 4 held-out games), preset (a model preset name: a random model of that
shape over the checkpoint's tokenizer instead of the checkpoint's weights, for tests), sft
(SFT steps on the environment's demonstrations before RL, batch 8; 0 = none), example
(two_tools: 1 = a worked episode before the question, 0 = the question alone).
"""
from configs.recipes import lora_run
from configs.smollm2_rlvr import SMOLLM2
from rlpt.config import base_config, parse_arg

GAMES = {"guess_number": dict(turns=4, turn_tokens=10, max_reply=32, env_kwargs=dict(high=10)),
         "wordle": dict(turns=6, turn_tokens=10, max_reply=32, env_kwargs={}),
         # a worked episode before the question: without it SmolLM2 made no successful tool
         # call in 32 episodes, with it 9 of 32 did (docs/environments.md)
         # 672-token rows x 32 episodes: the update without these asked for 36 GB
         "two_tools": dict(turns=3, turn_tokens=48, max_reply=32, prompt_len=464,
                           env_kwargs=dict(max_turns=3, example=True),
                           memory=dict(logits_chunk=52, attention="blockwise",
                                       attention_block=128, grad_accum=4)),
         "reasoning_gym": dict(turns=1, turn_tokens=48, max_reply=16, env_kwargs={})}


def get_config(arg: str = ""):
    a = parse_arg(arg, game="guess_number", seed=0, steps=200, checkpoint=SMOLLM2, lora=16,
                  quick=0, preset="", dataset="chain_sum", sft=0, example=1)
    if a["game"] not in GAMES:
        raise ValueError(f"env_games: game={a['game']!r}; known: {sorted(GAMES)}")
    g = GAMES[a["game"]]
    from rlpt.tokenizers import load_tokenizer
    tok = load_tokenizer(a["checkpoint"])
    c = base_config("grpo")
    c.seed = a["seed"]
    if a["preset"]:
        c.model.preset, c.model.vocab_size = a["preset"], tok.vocab_size
    else:
        c.model.checkpoint = a["checkpoint"]
    c.model.dtype = "float32"
    c.task.name = "env"
    env, env_kwargs = f"rlpt.envs.examples.{a['game']}:load_environment", dict(g["env_kwargs"])
    prompt_len = g.get("prompt_len", 96)
    if a["game"] == "two_tools" and not a["example"]:   # the prompt without the worked example
        env_kwargs["example"], prompt_len = False, 320
    if a["game"] == "reasoning_gym":
        env = "rlpt.envs.reasoning_gym:load_environment"
        env_kwargs = dict(dataset=a["dataset"], size=2000, seed=0, system="direct")
    c.task.kwargs = dict(env=env, env_kwargs=env_kwargs,
                         tokenizer_path=a["checkpoint"], prompt_len=prompt_len,
                         turn_tokens=g["turn_tokens"], max_reply=g["max_reply"], n_heldout=64)
    c.sampling.stop_tokens = (tok.eos_id,)
    c.sampling.pad_id = tok.pad_id
    # room for every turn and every reply (a reply block is a power of two >= max_reply)
    c.sampling.max_new_tokens = g["turns"] * g["turn_tokens"] + (g["turns"] - 1) * g["max_reply"]
    c.sampling.num_samples = 8          # G episodes per prompt
    c.sampling.temperature = 1.0
    c.algo.beta = 0.0
    c.sft.steps = a["sft"]   # > 0: a warm-up on the environment's demonstrations first
    if a["sft"]:
        c.sft.batch_size = 8
        c.sft.optim.lr, c.sft.optim.warmup_steps = 1e-4, 5   # LoRA's rate; a guess, not tuned
    c.rl.steps = a["steps"]
    c.rl.batch_size = 4
    mem = g.get("memory", {})
    c.rl.grad_accum = mem.get("grad_accum", 1)   # the update over 4 microbatches of 8 episodes
    c.model.logits_chunk = mem.get("logits_chunk", 0)
    c.model.attention = mem.get("attention", "plain")
    c.model.attention_block = mem.get("attention_block", 512)
    c.optim.lr = 1e-5                   # LoRA: 10x (lora_run); a guess, not tuned
    c.optim.warmup_steps = 5
    c.optim.max_grad_norm = 1.0
    c.eval.n_prompts = 32
    c.eval.n_samples = 4
    c.eval.ks = (1, 4)
    c.eval.every = 25
    c.log_every = 1
    c.ckpt_every = 25
    lora_run(c, a["lora"])
    if a["quick"]:
        c.rl.steps, c.rl.batch_size, c.sampling.num_samples = 2, 2, 2
        c.eval.n_prompts, c.eval.n_samples, c.eval.ks, c.eval.every = 4, 2, (1, 2), 10 ** 9
    return c

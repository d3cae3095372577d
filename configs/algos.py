"""Every policy-gradient algorithm of the zoo on 1-2 digit addition, from one file.

    python -m rlpt.train --config=configs/algos.py:algo=dapo --workdir=runs/dapo
    python -m rlpt.train --config=configs/algos.py:algo=ppo,size=nano,quick=1 --workdir=...

Arguments (after ':'): algo (one of ALGOS), size (a model preset), seed, quick (1 = a smoke run).
The recipe is configs/grpo_arith.py's (SFT warm-up, then RL); each algorithm starts from its
paper defaults (the DEFAULTS of its file, rlpt/algorithms/<name>.py) and the function below sets
only what the 5-token task needs and the algorithm's step knobs (docs/algorithms.md lists them).
ALGOS is every policy-gradient algorithm in the registry: a new algorithm file runs here with
no edit unless it needs task-specific knobs.
"""
from configs.recipes import arithmetic_run
from rlpt import registry
from rlpt.config import base_config, parse_arg
from rlpt.tokenizers import CharTokenizer

ALGOS = tuple(n for n in registry.names("algorithm")
              if registry.get("algorithm", n).kind == "policy_gradient")

_TOK = CharTokenizer()


def _ids(text):
    return tuple(_TOK.encode(text))


def _algo_specific(c, name, quick):
    a = c.algo
    T = c.sampling.max_new_tokens
    if name == "ppo":
        c.rl.ppo_epochs, c.rl.minibatches = 2, 2
        a.value_trunk_grad = True
    elif name == "dapo":
        # overlong band scaled to the task: answers (<= 3 digits + eos) fit in T - 1 tokens
        a.overlong_max, a.overlong_cache = T, 1
        a.oversample = 2
    elif name in ("gspo", "gspo_token", "gmpo"):
        c.rl.minibatches = 2  # off-policy minibatches, so the sequence-ratio clip can bind
    elif name == "kdrl":
        a.teacher_source = "policy"
        a.teacher_preset, a.teacher_seed = "", 1
        a.teacher_checkpoint, a.teacher_checkpoint_format = "", ""
    elif name == "exp_grpo":
        a.expl_prefix_ids, a.expl_suffix_ids = _ids("("), _ids(")")  # "12+34=(46)" -> c~
        a.expl_samples, a.expl_max_tokens = 1, T
    elif name == "mgrpo":
        a.layer2_instruction_ids = _ids("?")  # "12+34=45?" -> a corrected answer
        a.layer2_per_prompt = 1
    elif name == "uft":
        a.hint_steps = max(1, int(0.6 * c.rl.steps))  # T_hint = 300 of T = 500
        a.hint_in_reward = True
    elif name == "relift":
        a.sft_buffer_size = 4 if quick else 32
    elif name in ("sft", "relift_sft"):
        a.sft_source = "gold"
        c.sft.steps = 0           # the fused loop is the supervised run
        c.optim.lr = c.sft.optim.lr
    elif name == "one_shot_rlvr":
        c.task.name = "one_shot"
        c.task.kwargs = dict(base="addition", base_kwargs=dict(min_digits=1, max_digits=2),
                             pool_seed=0, pool_size=64, index=0)
        c.sampling.num_samples = 8  # temperature 0.6: the algorithm's default (base_config)


def get_config(arg: str = ""):
    a = parse_arg(arg, algo="grpo", size="tiny", seed=0, quick=0)
    if a["algo"] not in ALGOS:
        raise ValueError(f"configs/algos.py: unknown algo {a['algo']!r}; known: {list(ALGOS)}")
    c = base_config(a["algo"])
    arithmetic_run(c, a, rl_steps=800, rl_batch_size=16, eval_every=200)
    _algo_specific(c, a["algo"], a["quick"])
    return c

"""1-shot RLVR (arXiv 2504.20571) on SmolLM2-135M-Instruct (issue 28, second claim): RL on one
example against RL on the full set, same steps, held-out accuracy on the trained task and on a
second one.

    # the example: the paper's historical-variance rule on a short pilot over a pool of 16,
    # 4 questions a step (the whole pool in one step ran out of memory: a 29.6 GB allocation)
    python scripts/one_shot_rank.py --config=configs/smollm2_one_shot.py --pool_size=16 \
        --prompts_per_step=4 --steps=10 --out=runs/smollm2_one_shot_rank.npz
    # the ranking's top example (index 3, experiments/smollm2_one_shot/rank.txt) is the default
    python -m rlpt.sweep --config=configs/smollm2_one_shot.py --workdir=runs/smollm2_one_shot

Task: the `one_shot` task (rlpt.tasks.one_shot) over a `transfer` task (rlpt.tasks.transfer)
of two word_arith kinds: word problems with addends 2-29 (`add`, component 0, the one RL trains
on) and plain sums "What is a + b?" with a, b in 1-50 (`plain_add`, component 1, evaluated
only: the second task). The full-data arm (index -1) draws 4 fresh word problems a step; the
1-shot arm repeats pool example `index` 4 times a step. Both arms: 4 prompts x 8 samples, 64 new
tokens, the paper's algorithm (rlpt/algorithms/one_shot_rlvr.py: GRPO with a k3 KL of 1e-3, an
entropy bonus of 1e-3, a token-mean loss, temperature 0.6), lr 5e-6 (configs/smollm2_rlvr.py's),
`steps` steps, full fine-tune. Held-out: `n_prompts` questions, half of each kind (the
`_d0` / `_d1` metrics), greedy and 8 draws at temperature 1, the same draws in every run
(eval.seed 0), so the base model is evaluated once per sweep (rlpt.sweep.eval_cache).

Arguments (after ':'): seed, seeds (get_sweep), steps, index (the 1-shot example; get_sweep's
1-shot arm; default 3, the pilot's choice), arm ('full' or 'one_shot': get_config's),
pool_size, n_prompts, quick.
"""
from configs.smollm2_passk import get_config as smollm2_passk_config
from rlpt.config import base_config, parse_arg
from rlpt.sweep.points import axis, product, seeds

ARGS = dict(seed=0, seeds=3, steps=40, index=3, arm="one_shot", pool_size=16, n_prompts=64,
            quick=0)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = smollm2_passk_config(f"seed={a['seed']},steps={a['steps']},n_prompts={a['n_prompts']},"
                             f"n_samples=8,chunk=8,quick={a['quick']}")
    word = dict(c.task.kwargs.to_dict(), kind="add")
    plain = dict(word, kind="plain_add")
    c.task.name = "one_shot"
    c.task.kwargs = dict(base="transfer", pool_seed=0, pool_size=a["pool_size"],
                         index=a["index"] if a["arm"] == "one_shot" else -1,
                         base_kwargs=dict(train=0, components=[
                             dict(name="word_arith", kwargs=word),
                             dict(name="word_arith", kwargs=plain)]))
    c.algo = base_config("one_shot_rlvr").algo   # the paper's defaults, beta 1e-3 included
    c.algo.group_size = -1                        # follows sampling.num_samples (8)
    c.sampling.temperature = c.algo.temperature   # 0.6, the paper's
    return c


def get_sweep(arg: str = ""):
    """Seeds x {full data, example `index`} (points that train alone: the reward is on the host;
    each seed's arms start from the same pretrained model and share its evaluation)."""
    a = parse_arg(arg, **ARGS)
    return product(axis("config.task.kwargs.index", [-1, a["index"]]), seeds(a["seeds"]))

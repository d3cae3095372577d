"""PPO (a learned critic, GAE) vs GRPO (group-relative advantages, no critic) on scratchpad
addition at the same budget of prompts and sampled responses (experiments/ppo_vs_grpo/).

    python -m rlpt.sweep --config=configs/ppo_vs_grpo.py --workdir=runs/ppo_vs_grpo
    python -m rlpt.train --config=configs/ppo_vs_grpo.py:algo=ppo,seed=1 --workdir=...

Both arms: the recipe of configs/dr_grpo_length.py (tiny model from scratch, 300 SFT steps on
1-3 digit worked solutions), then RL with 16 prompts x 8 samples per step at temperature 1, the
same steps and learning rate, no KL term (GRPO beta=0, PPO kl_coef=0), and the same update
schedule: configs/algos.py's PPO knobs, rl.ppo_epochs=2 x rl.minibatches=2 (4 optimizer updates
per batch of samples). The arms differ only in what the paper defaults of the two algorithms
differ in (rlpt.losses.defaults): PPO adds a value head on the policy trunk (`value_trunk_grad`,
vf_coef 0.5, value clip 0.2), GAE advantages with gamma = lambda = 1 whitened over the batch,
`token_mean` aggregation and the dual clip 3; GRPO uses (r - group mean) / group std per group of
8 and `seq_mean_token_mean`. PPO ignores the grouping of the 8 samples per prompt. The learning
rate (1e-4, both arms) was set by the rule in experiments/gspo_gmpo_stability/README.md from
GRPO-only pilots with these update knobs (a pilot seed collapsed at 3e-4).

Arguments (after ':'): algo (grpo | ppo, for get_config), seed, size, seeds (get_sweep: how
many, from 0), arms (get_sweep: '/'-separated), quick (1 = a seconds-long smoke version), and
rl_steps, sft_steps, batch, max_new, lr, epochs (rl.ppo_epochs), minibatches, evals
(held-out evaluations during RL besides the one after SFT).
"""
from rlpt.config import base_config, default_algo, parse_arg

ARGS = dict(algo="grpo", seed=0, size="tiny", seeds=5, quick=0, rl_steps=100, sft_steps=300,
            batch=16, max_new=48, lr=1e-4, epochs=2, minibatches=2, evals=2, arms="grpo/ppo")
ALGOS = ("grpo", "ppo")
UNIFORM = ("name", "beta", "group_size")  # set per arm / equal in every arm, never an override


def union_algo(algos):
    """cfg.algo holding every key of every arm's defaults (the first arm's value where two arms
    share a key), so that a sweep point can switch the algorithm by overriding existing keys."""
    out = default_algo(algos[0]).to_dict()
    for name in algos[1:]:
        for k, v in default_algo(name).to_dict().items():
            out.setdefault(k, v)
    return out


def arm_overrides(name, algos):
    """The keys where `name`'s paper defaults differ from the union base (module doc)."""
    base = union_algo(algos)
    own = default_algo(name).to_dict()
    o = {"config.algo.name": name}
    for k, v in own.items():
        if k not in UNIFORM and base.get(k) != v:
            o[f"config.algo.{k}"] = v
    return o


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = base_config(a["algo"])
    for k, v in union_algo((a["algo"],) + tuple(x for x in ALGOS if x != a["algo"])).items():
        if k not in c.algo:
            c.algo[k] = v
    c.algo.beta = 0.0
    c.algo.kl_coef = 0.0
    c.algo.group_size = -1
    c.seed = a["seed"]
    c.model.preset = a["size"]
    c.task.name = "scratchpad_addition"
    c.task.kwargs = dict(min_digits=1, max_digits=3)
    c.sampling.max_new_tokens = a["max_new"]
    c.sampling.num_samples = 8
    c.sampling.temperature = 1.0
    c.rl.steps = a["rl_steps"]
    c.rl.batch_size = a["batch"]
    c.rl.ppo_epochs = a["epochs"]
    c.rl.minibatches = a["minibatches"]
    c.optim.lr = a["lr"]
    c.sft.steps = a["sft_steps"]
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = max(1, a["rl_steps"] // max(1, a["evals"]))
    c.eval.n_prompts = 128
    c.eval.n_samples = 8
    c.log_every = 5
    c.ckpt_every = max(1, a["rl_steps"] // 4)
    c.wandb.mode = "disabled"
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 16
        c.log_every = c.ckpt_every = 2
    return c


def get_sweep(arg: str = ""):
    """algo in {grpo, ppo} x seeds 0..seeds-1: one vmapped group per algorithm."""
    from rlpt.sweep_points import product, seeds
    a = parse_arg(arg, **ARGS)
    algos = (a["algo"],) + tuple(x for x in ALGOS if x != a["algo"])
    arms = [x for x in a["arms"].split("/") if x]
    return product([arm_overrides(x, algos) for x in arms], seeds(a["seeds"]))

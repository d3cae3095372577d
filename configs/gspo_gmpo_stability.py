"""GSPO (arXiv 2507.18071) and GMPO vs GRPO: stability with off-policy minibatches at a high
learning rate, on scratchpad addition (experiments/gspo_gmpo_stability/).

    python -m rlpt.sweep --config=configs/gspo_gmpo_stability.py --workdir=runs/gspo_gmpo_stability
    python -m rlpt.sweep --config=configs/gspo_gmpo_stability.py:arms=grpo,lrs=1e-4/3e-4/1e-3,seeds=2,seed_start=10 --workdir=runs/gspo_gmpo_pilot

The recipe of configs/dr_grpo_length.py (tiny model from scratch, 300 SFT steps on 1-3 digit
worked solutions, 16 prompts x 8 samples per RL step at temperature 1, no KL term), with
rl.ppo_epochs=2 x rl.minibatches=2: each batch of samples is used for 4 optimizer updates, the
last three off-policy, so the importance ratios move away from 1 and the clips can bind. The
arms differ only in what their paper defaults differ in (rlpt.losses.defaults):

* grpo: token-level ratio, clip 1 +- 0.2, `seq_mean_token_mean`;
* gspo: one sequence-level ratio (the geometric mean of the token ratios), clip
  [1 - 3e-4, 1 + 4e-4], log-ratio clamp 10;
* gmpo: the geometric mean of the token-level clipped ratios, clip in log space e^-0.4 .. e^0.4.

All three use the GRPO advantage ((r - group mean) / group std over 8 samples). The learning
rate (the `lrs` axis, the same for every arm; default 3e-4) was chosen from GRPO-only pilots by
the rule stated in experiments/gspo_gmpo_stability/README.md. Held-out greedy accuracy and pass@k on 128
prompts (8 samples) after SFT and every rl_steps / evals RL steps.

Arguments (after ':'): algo (for get_config), seed, size, seeds and seed_start (get_sweep: the
seeds seed_start .. seed_start + seeds - 1), arms ('/'-separated), lrs ('/'-separated RL learning
rates, an axis), quick (1 = a seconds-long smoke version), rl_steps, sft_steps, batch, max_new,
epochs (rl.ppo_epochs), minibatches, evals.
"""
from rlpt.config import base_config, default_algo, parse_arg

ARGS = dict(algo="grpo", seed=0, size="tiny", seeds=5, seed_start=0, quick=0, rl_steps=60,
            sft_steps=300, batch=16, max_new=48, lrs="3e-4", epochs=2, minibatches=2, evals=6,
            arms="grpo/gspo/gmpo")
ALGOS = ("grpo", "gspo", "gmpo")
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
    o = {"config.algo.name": name}
    for k, v in default_algo(name).to_dict().items():
        if k not in UNIFORM and base.get(k) != v:
            o[f"config.algo.{k}"] = v
    return o


def _algos(first):
    return (first,) + tuple(x for x in ALGOS if x != first)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = base_config(a["algo"])
    for k, v in union_algo(_algos(a["algo"])).items():
        if k not in c.algo:
            c.algo[k] = v
    c.algo.beta = 0.0
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
    c.optim.lr = float(a["lrs"].split("/")[0])
    c.sft.steps = a["sft_steps"]
    c.sft.batch_size = 64
    c.sft.optim.lr = 1e-3
    c.eval.every = max(1, a["rl_steps"] // max(1, a["evals"]))
    c.eval.n_prompts = 128
    c.eval.n_samples = 8
    c.log_every = 5
    c.ckpt_every = max(1, a["rl_steps"] // 3)
    c.wandb.mode = "disabled"
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 16
        c.log_every = c.ckpt_every = 2
    return c


def get_sweep(arg: str = ""):
    """arms x learning rates x seeds: one vmapped group per algorithm (the learning rate is a
    dynamic hyperparameter, so every lr of an arm shares its program)."""
    from rlpt.sweep_points import axis, product, seeds
    a = parse_arg(arg, **ARGS)
    algos = _algos(a["algo"])
    arms = [arm_overrides(x, algos) for x in a["arms"].split("/") if x]
    lrs = [float(x) for x in a["lrs"].split("/") if x]
    return product(arms, axis("config.optim.lr", lrs), seeds(a["seeds"], a["seed_start"]))

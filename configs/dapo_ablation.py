"""DAPO (arXiv 2503.14476) built up from GRPO one component at a time, on scratchpad addition:
accuracy, entropy and length after each addition (experiments/dapo_ablation/).

    python -m rlpt.sweep --config=configs/dapo_ablation.py --workdir=runs/dapo_ablation

The recipe is configs.recipes.scratchpad_run (tiny model from scratch, 300 SFT steps, 200 RL steps
of 16 prompts x 8 samples at temperature 1, 48 new tokens, no KL term), with the update schedule
and learning rate below. Five cumulative arms, as in the paper's Table 1 (each adds one
component to the one before; every point sets all four keys):
1. `grpo`: clip 0.2 / 0.2, per-response mean loss (`seq_mean_token_mean`), 0/1 reward, no
   dynamic sampling;
2. `clip_higher`: eps_high 0.28;
3. `token_mean`: + the token-level loss (`loss_agg=token_mean`);
4. `overlong`: + DAPO's reward shaping (`dapo_reward_pm1`: +1 / -1 correctness reward, then
   `dapo_overlong`: the soft overlong penalty of eq. 13, scaled to this budget: L_max =
   `overlong_max` = 48 new tokens, cache `overlong_cache` = 8, so lengths 41..48 are penalised;
   worked solutions here are at most 32 tokens);
5. `dapo`: + dynamic sampling (`algo.dynamic_sampling`: groups whose 8 samples are all correct or
   all wrong are masked out of the loss and its token-mean denominator). Without over-sampling
   (`oversample` 1): the paper re-samples until the batch is full, which has no static shape
   (rlpt/pieces/dynamic_sampling.py), so every arm has the same budget of prompts and samples.
GRPO's advantage (group z-score) is the same in all arms (DAPO uses it too).

Update schedule: 2 minibatches of 8 prompts per batch (`minibatches=2`), so the second update
of each batch is off-policy and the clip (0.2 vs 0.28 on the high side) can bind; with one
update per batch the importance ratio is exactly 1 and the `clip_higher` arm would equal `grpo`
(the paper takes many minibatch updates per batch). The learning rate is halved to 1.5e-4 so
that lr x updates per batch equals the recipe's (3e-4 x 1): at 3e-4, 2 updates per batch lowered
GRPO's held-out accuracy (experiments/unlikely_passk) and 2 x 2 collapsed pilot seeds
(experiments/gspo_gmpo_stability). This is a rule, not a tuned value; it is the same for every
arm.

Arguments (after ':'): arm (for get_config), seeds (get_sweep: 0 .. seeds-1), arms ('/'-separated),
epochs (rl.ppo_epochs), minibatches (rl.minibatches), and SCRATCHPAD_ARGS (seed, size, quick,
rl_steps, sft_steps, batch, max_new, lr, max_digits, hard_max_digits, evals,
lrs: get_sweep's '/'-separated rates, every arm at each, val_prompts: validation prompts;
experiments/lr_grid.py).
"""
from configs.recipes import SCRATCHPAD_ARGS, lr_axis, scratchpad_run
from rlpt.config import base_config, parse_arg
from rlpt.sweep.points import apply_overrides

ARGS = dict(SCRATCHPAD_ARGS, arm="grpo", seeds=3, epochs=1, minibatches=2, lr=1.5e-4,
            arms="grpo/clip_higher/token_mean/overlong/dapo")
STEPS = [  # (arm, the component it adds)
    ("grpo", {"config.algo.eps_high": 0.2, "config.algo.loss_agg": "seq_mean_token_mean",
              "config.algo.shaping": (), "config.algo.dynamic_sampling": False}),
    ("clip_higher", {"config.algo.eps_high": 0.28}),
    ("token_mean", {"config.algo.loss_agg": "token_mean"}),
    ("overlong", {"config.algo.shaping": ("dapo_reward_pm1", "dapo_overlong")}),
    ("dapo", {"config.algo.dynamic_sampling": True}),
]


def arms() -> dict:
    """arm -> its overrides (all four keys): each arm is the one before plus its component."""
    out, cur = {}, {}
    for name, adds in STEPS:
        cur = {**cur, **adds}
        out[name] = dict(cur)
    return out


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = scratchpad_run(base_config("grpo"), a)
    c.algo.group_size = -1              # follows sampling.num_samples (8)
    c.rl.ppo_epochs, c.rl.minibatches = a["epochs"], a["minibatches"]
    c.algo.update(dict(dynamic_sampling=False, dynamic_sampling_atol=0.0, reward_correct=1.0,
                       reward_wrong=-1.0, overlong_max=a["max_new"], overlong_cache=8))
    apply_overrides(c, arms()[a["arm"]])
    return c


def get_sweep(arg: str = ""):
    """The arms in order x seeds 0..seeds-1: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([arms()[x] for x in a["arms"].split("/") if x], lr_axis(a),
                   seeds(a["seeds"]))

"""ToolRL (Qian et al., arXiv 2504.13958; issue 27, claim 10): GRPO with ToolRL's fine-grained
format + correctness reward vs GRPO with a binary (exact call) reward vs more SFT, on the
`function_call` task (rlpt/tasks/function_call.py): requests in words -> calls of six typed tools,
three tool pairs held out of every training and SFT batch.

    python -m rlpt.sweep --config=configs/toolrl_function_call.py --workdir=runs/toolrl

Every arm of a seed starts from one SFT model: the `tiny` model from scratch, `sft` x 64
demonstrations (single calls and seen pairs), lr 1e-3. `sft=300` was chosen by a pilot (seed 0)
so that RL starts from a partly right model: held-out greedy after 150 / 300 / 600 SFT steps
0.104 / 0.581 / 0.935 (experiments/toolrl_function_call/README.md). Then `rl_steps` steps of
16 prompts at learning rate `lr` (5e-4, the tiny recipes' RL rate; 1.5e-4 in a follow-up), beta 0:
- `fine`: GRPO, 8 samples per prompt, `reward.proxy = "toolrl_fine_grained"` (R in [-3, 4]);
- `binary`: GRPO, 8 samples per prompt, the task's exact call match (R in {0, 1});
- `sft`: the NLL of the gold calls of the same prompts (rlpt/algorithms/sft.py), same steps and
  learning rate (the SFT-only baseline at the same budget of updates).
Held-out: 384 prompts, a third each of single calls, seen pairs and held-out pairs (`_d0`, `_d1`,
`_d2`), greedy and 8 samples at temperature 1, exact match, after SFT and every rl_steps // 4.

Arguments (after ':'): arm (fine | binary | sft), seed, seeds (get_sweep), rl_steps, sft, lr,
quick.
"""
from configs.recipes import comparison_config
from rlpt.config import parse_arg
from rlpt.sweep.points import apply_overrides

ARGS = dict(arm="fine", seed=0, seeds=5, rl_steps=200, sft=300, lr=5e-4, quick=0)
ALGOS = ("grpo", "sft")


def arms() -> dict:
    """arm -> its overrides: the algorithm's (rlpt.sweep.points.algorithm_arms) and the proxy."""
    from rlpt.sweep.points import algorithm_arms
    grpo, sft = algorithm_arms(list(ALGOS))
    return {"fine": dict(grpo, **{"config.reward.proxy": "toolrl_fine_grained"}),
            "binary": dict(grpo, **{"config.reward.proxy": ""}),
            "sft": dict(sft, **{"config.reward.proxy": ""})}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    if a["arm"] not in arms():
        raise ValueError(f"toolrl_function_call: arm={a['arm']!r}; known: {sorted(arms())}")
    c = comparison_config("grpo", ALGOS)
    c.seed = a["seed"]
    c.model.preset = "tiny"
    c.task.name = "function_call"
    c.task.kwargs = dict(single_frac=0.3, heldout="0-3,1-4,2-5")
    c.sampling.max_new_tokens = 32        # the longest answer is 31 characters and eos
    c.sampling.num_samples = 8
    c.sampling.temperature = 1.0
    c.algo.beta = 0.0
    c.rl.steps, c.rl.batch_size = a["rl_steps"], 16
    c.optim.lr = a["lr"]
    c.sft.steps, c.sft.batch_size, c.sft.optim.lr = a["sft"], 64, 1e-3
    c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 384, 8, (1, 8)
    c.eval.every = max(a["rl_steps"] // 4, 1)
    c.log_every = 5
    c.wandb.mode = "disabled"
    c.reward.proxy = ""
    apply_overrides(c, arms()[a["arm"]])
    if a["quick"]:
        c.rl.steps, c.sft.steps, c.eval.every, c.eval.n_prompts = 4, 10, 2, 24
    return c


def get_sweep(arg: str = ""):
    """arms x seeds: one vmapped group per arm."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product(list(arms().values()), seeds(a["seeds"]))

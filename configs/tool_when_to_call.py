"""When to call a tool (issue 27, claim 12): half the prompts are 1-digit x 1-digit products a tiny
model learns by heart, half 3-digit x 2-digit products it cannot compute without the calculator.
Does GRPO learn to call only where the tool helps, or to call always?

    python -m rlpt.sweep --config=configs/tool_when_to_call.py --workdir=runs/tool_when_to_call

The recipe is configs/tool_calc.py's (tiny model from scratch; SFT 300 x 64 demos, half of them
calling the calculator on either difficulty, lr 2e-3; GRPO, beta 0, 16 prompts x 8 samples,
lr 5e-4) with `easy_fraction=0.5` and 100 RL steps; held-out evaluation of 256 prompts (greedy and
4 samples) after SFT and every 25 steps, per difficulty (`_d1` easy, `_d3` hard).

Arms: the per-call charge `call_cost` in {0, 0.1, 0.3} (reward = correct - call_cost x calls).
With no charge, calling on an easy prompt costs nothing, so "always call" is as good as calling
when useful; a charge makes the conditional policy the better one wherever the model's direct
answer is about as accurate as the tool's. The arms of a seed share their SFT model (the
charge is a reward weight: rlpt.sweep.sft_cache).

Arguments (after ':'): seed, seeds (get_sweep: 0 .. seeds-1), costs ('/'-separated), steps (RL),
quick (1 = a seconds-long smoke version).
"""
from configs import tool_calc
from rlpt.config import parse_arg

ARGS = dict(seed=0, seeds=5, costs="0/0.1/0.3", steps=100, quick=0)


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = tool_calc.get_config(f"size=tiny,seed={a['seed']},quick={a['quick']}")
    c.task.kwargs.easy_fraction = 0.5
    c.task.kwargs.easy_max_digits = 1
    c.task.kwargs.call_cost = 0.0
    if not a["quick"]:
        c.rl.steps, c.eval.every = a["steps"], 25
    return c


def get_sweep(arg: str = ""):
    """costs x seeds: the charge outermost, so one arm's seeds run one after another."""
    from rlpt.sweep.points import axis, product, seeds
    a = parse_arg(arg, **ARGS)
    costs = [float(x) for x in str(a["costs"]).split("/") if x]
    return product(axis("config.task.kwargs.call_cost", costs), seeds(a["seeds"]))

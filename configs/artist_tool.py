"""ARTIST (arXiv 2505.01441) at this scale (issue 27, claim 9): RL with the calculator in the
rollout vs RL without it, from the same SFT model, at the same sample budget.

    python -m rlpt.sweep --config=configs/artist_tool.py --workdir=runs/artist_tool

The recipe is configs/tool_calc.py's (tiny model from scratch; SFT 300 x 64 demos, half of them
calling the calculator, lr 2e-3; GRPO, beta 0, 60 steps of 16 prompts x 8 samples, lr 5e-4,
correctness reward only; 256 held-out prompts, greedy and 4 samples, after SFT and every 20
steps). Arms:
- `tool`: `rollout.kind="tool"`: a `[expr]` the model writes is answered by the calculator;
- `no_tool`: `rollout.kind="plain"`: nothing answers; a completion is correct only when it is
  the product's digits alone (the model must learn to answer directly).
The arms of a seed start from one SFT model (the warm-up's loss is on the model's tokens
whichever rollout RL plays; rlpt.build.build_sft) and draw the same prompts. Two problem
sizes (`sizes`): 3-digit x 2-digit products (a tiny model cannot compute them) and 2-digit x
1-digit ones (it can learn some), so the tool's advantage is measured where direct answers
have a chance too.

Arguments (after ':'): seed, seeds (get_sweep: 0 .. seeds-1), arm (tool | no_tool), size
(3x2 | 2x1), sizes ('/'-separated, get_sweep), quick.
"""
from configs import tool_calc
from rlpt.config import parse_arg
from rlpt.sweep.points import apply_overrides

ARGS = dict(seed=0, seeds=5, arm="tool", size="3x2", sizes="3x2/2x1", quick=0)
ARMS = {"tool": {"config.rollout.kind": "tool"}, "no_tool": {"config.rollout.kind": "plain"}}


def size_overrides(size: str) -> dict:
    """'AxB' -> the task's operand digit counts (A-digit x B-digit products)."""
    try:
        a, b = (int(x) for x in size.split("x"))
    except ValueError:
        raise ValueError(f"artist_tool: size={size!r}; expected 'AxB', e.g. 3x2") from None
    k = "config.task.kwargs."
    return {k + "min_digits_a": a, k + "max_digits_a": a, k + "min_digits_b": b,
            k + "max_digits_b": b}


def get_config(arg: str = ""):
    a = parse_arg(arg, **ARGS)
    c = tool_calc.get_config(f"size=tiny,seed={a['seed']},quick={a['quick']}")
    apply_overrides(c, {**ARMS[a["arm"]], **size_overrides(a["size"])})
    return c


def get_sweep(arg: str = ""):
    """sizes x arms x seeds."""
    from rlpt.sweep.points import product, seeds
    a = parse_arg(arg, **ARGS)
    return product([size_overrides(s) for s in a["sizes"].split("/") if s],
                   [ARMS["tool"], ARMS["no_tool"]], seeds(a["seeds"]))

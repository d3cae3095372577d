"""Prompt sources: synthetic verifiable tasks generated on the fly, and datasets.

A task and its own reward sit side by side: `<task>.py` (prompts and batches, a registered task)
and `<task>_reward.py` (its on-device reward, registered):

    synthetic.py   addition, multiplication, countdown      synthetic_reward.py
    scratchpad.py  scratchpad_addition                      scratchpad_reward.py
    tool_task.py   tool_multiplication (calculator calls)   tool_answer, in the same file
    gsm8k.py       gsm8k (gsm8k_data.py: reader, TFDS)      rlpt.rewards.math_answer (host)
    word_arith.py  word_arith (chat-template word problems) rlpt.rewards.math_answer (host)
    one_shot.py    one example of a base task               the base task's reward
    transfer.py    several tasks, RL on one                 the components' shared reward
    function_call.py  requests -> typed tool calls          function_call_reward.py (exact;
                                                            ToolRL's fine-grained, a proxy)

Reward machinery any task can use (host callback, judge, math verifier) is in rlpt/rewards/.
"""


def sft_batch(task, seed: int, step: int, n: int):
    """A step's SFT batch: the task's `sft_batch` when it has one (the one_shot task warms up on
    its base task, not on its single example; the scratchpad hard split withholds the hard rows'
    solutions from the warm-up only), else its `make_batch`."""
    return getattr(task, "sft_batch", task.make_batch)(seed, step, n)


def sft_source(name: str, kwargs: dict):
    """The task config `(name, kwargs)` whose data the task `name`'s SFT warm-up reads, when its
    class says it is another task's (`sft_source(kwargs)`: the one_shot task warms up on its
    base task; tool_multiplication names itself without its reward weights); None when the
    warm-up reads the task itself (rlpt.sweep.sft_cache keys on it)."""
    from rlpt import registry
    own = getattr(registry.get("task", name), "sft_source", None)
    if own is None:
        return None
    base, base_kwargs = own(kwargs)
    if base == name and base_kwargs == kwargs:   # the task itself (e.g. its reward weights cut)
        return None
    return sft_source(base, base_kwargs) or (base, base_kwargs)

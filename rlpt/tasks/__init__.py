"""Prompt sources: synthetic verifiable tasks generated on the fly, and datasets."""


def sft_batch(task, seed: int, step: int, n: int):
    """A step's SFT batch: the task's `sft_batch` when it has one (the one_shot task warms up on
    its base task, not on its single example; the scratchpad hard split withholds the hard rows'
    solutions from the warm-up only), else its `make_batch`."""
    return getattr(task, "sft_batch", task.make_batch)(seed, step, n)


def sft_source(name: str, kwargs: dict):
    """The task config `(name, kwargs)` whose data the task `name`'s SFT warm-up reads, when its
    class says it is another task's (`sft_source(kwargs)`: the one_shot task warms up on its
    base task); None when the warm-up reads the task itself (rlpt.sweep_sft_cache keys on it)."""
    from rlpt import registry
    own = getattr(registry.get("task", name), "sft_source", None)
    if own is None:
        return None
    base, base_kwargs = own(kwargs)
    return sft_source(base, base_kwargs) or (base, base_kwargs)

"""Prompt sources: synthetic verifiable tasks generated on the fly, and datasets."""


def sft_batch(task, seed: int, step: int, n: int):
    """A step's SFT batch: the task's `sft_batch` when it has one (the one_shot task warms up on
    its base task, not on its single example; the scratchpad hard split withholds the hard rows'
    solutions from the warm-up only), else its `make_batch`."""
    return getattr(task, "sft_batch", task.make_batch)(seed, step, n)

"""The `one_shot` task of 1-shot RLVR (arXiv:2504.20571): one training example duplicated to the
batch (`task.name = "one_shot"`, `task.kwargs = dict(base=..., base_kwargs=..., pool_seed=0,
pool_size=64, index=0)`). The pool is `base.make_batch(pool_seed, 0, pool_size)`; every training
batch is pool row `index` repeated `batch_size` times (index -1: the base task's own batches, so
that a sweep point switches between 1-shot and full data by `task.kwargs.index` alone).
Evaluation, rewards and decoding are the base task's (its held-out eval set, not the single
example), and so is the SFT warm-up (`sft_batch`, read by rlpt.tasks.sft_batch): it stands for
the pretrained model.
"""
import numpy as np

from rlpt import registry
from rlpt.tasks import sft_batch


@registry.register("task", "one_shot")
class OneShotTask:
    name = "one_shot"

    def __init__(self, base: str = "addition", base_kwargs=None, pool_seed: int = 0,
                 pool_size: int = 64, index: int = 0):
        if not -1 <= index < pool_size:
            raise ValueError(f"one_shot: index={index} is outside the pool of {pool_size} "
                             "(-1: the base task's own batches)")
        self.base = registry.get("task", base)(**dict(base_kwargs or {}))
        self.pool_seed, self.pool_size, self.index = pool_seed, pool_size, index

    def pool(self):
        """The candidate examples (a batch of `pool_size` rows)."""
        return self.base.make_batch(self.pool_seed, 0, self.pool_size)

    def make_batch(self, seed: int, step: int, batch_size: int):
        """Pool row `index` repeated `batch_size` times (the same for every seed and step);
        index -1: the base task's batch (the full-data arm of a 1-shot comparison)."""
        if self.index < 0:
            return self.base.make_batch(seed, step, batch_size)
        del seed, step
        return {k: np.repeat(v[self.index:self.index + 1], batch_size, axis=0)
                for k, v in self.pool().items()}

    @staticmethod
    def sft_source(kwargs):
        """The task the warm-up reads (rlpt.tasks.sft_source): the base task."""
        return kwargs.get("base", "addition"), dict(kwargs.get("base_kwargs") or {})

    eval_source = sft_source   # its evaluation is the base task's too (rlpt.sweep.eval_cache)

    def sft_batch(self, seed: int, step: int, batch_size: int):
        """The SFT warm-up's batch: the base task's (not the single example)."""
        return sft_batch(self.base, seed, step, batch_size)

    def __getattr__(self, attr):  # eval_set, reward, reference_reward, tokenizer, decode_*
        if attr == "base":
            raise AttributeError(attr)
        return getattr(self.base, attr)

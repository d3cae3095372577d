"""Held-out evaluation.

    metrics     the estimators: unbiased pass@k, maj@k, avg@k, per-difficulty and self-correction
                rates (numpy; a foundation module, no model in it)
    validation  the validation split: prompts for choosing hyperparameters, none of them a
                held-out prompt (numpy; a foundation module)
    rollout     the compiled evaluation program of one policy (sampling, rewards, greedy
                accuracy), shared by a single run (rlpt.evaluation.rollout.evaluate) and a
                sweep's vmapped runs
"""

"""Loss pieces shared by several algorithms: aggregation, KL estimators, supervised NLL and
entropy, the clipped surrogate (policy), and the preference and reward-model loss families.
An algorithm's own loss lives in its file, rlpt/algorithms/<name>.py."""

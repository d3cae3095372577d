"""The trainer of preference optimisation (DPO family, online DPO, DRPO) and reward models.

The algorithms themselves are records of the one registry (rlpt/algorithms/<name>.py, kind
"preference" or "reward_model"); this package runs them, asking no algorithm names:

    step.py               PreferenceStep: the generic jitted step of every preference algorithm
                          (its hooks and their defaults: offline pairs against a reference)
    reward_model_step.py  RewardModelStep: the generic jitted RM training step (default: BT)
    reward_model.py       RM = backbone + value head; `reward_model_reward` for the RL step
    records.py            the records of a kind, a record's config view and dynamic `hp`
    config.py             config defaults (from the records) and validation
    train.py              `run(cfg, workdir, allow_config_change)` (rlpt.train hands it preference
                          configs) and the CLI: python -m rlpt.preference.train --config=...

Same layer as rlpt.train: the state is rlpt.state.TrainState (frozen models by role), placed by
rlpt.loop.place_state; phases run in rlpt.loop.run_phase.
"""

"""Preference optimisation (DPO family, online DPO, DRPO) and reward-model training.

    step.py               PreferenceStep: the jitted step of every policy algorithm
    reward_model.py       RM = backbone + value head; `reward_model_reward` for the RL step
    reward_model_step.py  RewardModelStep: the jitted RM training step (bt, vrpo, ...)
    pairs.py              pairs from sampled responses (RLSF confidence, best vs worst, sync)
    config.py             config defaults and validation
    train.py              the CLI: python -m rlpt.preference.train --config=configs/dpo_arith.py

Same layer as rlpt.train: the state is rlpt.state.TrainState (frozen models by role), placed by
rlpt.loop.place_state; phases run in rlpt.loop.run_phase.
"""

"""What a run writes: resolved config, metrics JSONL, wandb (offline by default), orbax
checkpoints. Everything is keyed by (phase, step) so a resumed run continues the same files.

    workdir      WorkdirLock (one live run per workdir), check_config_change / config_diff (a
                 resumed run refuses a changed config unless allowed), write_json_atomic (summary
                 files are always whole, valid JSON), write_config, claimed_workdir
    metrics_log  MetricsLog (a line torn by a crash is dropped with a warning), to_python,
                 WandbLogger
    checkpoints  Checkpointer (a corrupt latest checkpoint falls back to the previous one; a
                 non-finite state is never saved: NonFiniteStateError), all_finite
    cli          cli_main (the trainers' --config / --workdir flags), unknown_key_message,
                 user_errors (a UserError or a full disk as one line, exit 2)
"""

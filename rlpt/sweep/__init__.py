"""Sweeps: every point of a config's `get_sweep(arg)`, vmappable groups as one compiled program.

    python -m rlpt.sweep --config=configs/grpo_arith.py:seeds=3 --workdir=runs/sweep_arith

    main       the entry point: load_sweep, select_points, run_sweep, the CLI (__main__)
    points     declaring a grid (axis, product, seeds, algorithm_arms), checking and grouping it
    run        one vmappable group as one compiled program per phase (SFT, RL, evaluation)
    sft_cache  SFT warm-ups shared between a sweep's groups and with follow-up sweeps
    report     the table with 95% t-intervals over seeds, curves with bands, sweep.json
"""

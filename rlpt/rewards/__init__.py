"""Reward machinery any task can use (a task's own reward sits beside it in rlpt/tasks/):
host_callback (a host reward inside the jitted step), host_guard, judge and judge_train
(LM-as-judge), prompt_target, math_answer (the math answer verifier; GSM8K's reward) and
tool_rewards (host-side rewards of tool-use and reasoning papers: ToolRL, ARTIST, RPT,
General-Reasoner)."""

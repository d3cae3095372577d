"""Multi-turn and tool-using environments, and the host-side grouping of agentic rollouts."""

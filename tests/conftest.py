"""Shared pytest setup. Multi-device tests live in tests/multidevice/ and run in their own
process (see tests/test_sharding.py), because XLA_FLAGS must be set before jax is imported."""
import os

collect_ignore = ["multidevice"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("RLPT_SHARED_DATA",
                             os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))

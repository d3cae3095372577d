"""Shared pytest setup. Multi-device tests live in tests/multidevice/ and run in their own
process (see tests/test_sharding.py), because XLA_FLAGS must be set before jax is imported."""
import os

collect_ignore = ["multidevice"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("RLPT_SHARED_DATA",
                             os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


def within(seconds, fn, *args):
    """fn(*args), failing the test (via SIGALRM) if it runs longer than `seconds`."""
    import signal

    def _timeout(*_):
        raise AssertionError(f"{getattr(fn, '__name__', fn)} took longer than {seconds}s")
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

"""Shared pytest setup. Multi-device tests live in tests/multidevice/ and run in their own
process (see tests/test_sharding.py), because XLA_FLAGS must be set before jax is imported."""
import os

collect_ignore = ["multidevice"]

# The test files that take longest (a few minutes each on 2 cores), scheduled first: the suite
# runs one file per xdist worker (pytest.ini), and long files started last would leave one
# worker busy after the other has finished everything else.
LONGEST_FIRST = ("test_multiprocess.py", "test_sharding.py", "test_trainer.py", "test_golden.py",
                 "test_preference_step.py", "test_rl_step.py", "test_nonfinite.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file

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

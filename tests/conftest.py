"""Shared pytest setup. Multi-device tests live in tests/multidevice/ and run in their own
process (see tests/test_sharding.py), because XLA_FLAGS must be set before jax is imported."""
import os
import shutil
import tempfile

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


_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


# The longest test files (CPU seconds, most first; measured with `--durations=0`), run first: with
# `--dist loadfile --no-loadscope-reorder` (pytest.ini) xdist hands out files in this order, so
# the two subprocess-heavy files start at once instead of finishing alone at the end of the run.
LONGEST_FIRST = ("test_sharding.py", "test_notebooks.py", "test_multiprocess.py", "test_lora.py",
                 "test_memory_features.py", "test_step.py", "test_preference_step.py",
                 "test_nonfinite.py", "test_trainer.py", "test_zoo.py", "test_sampling.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(os.path.basename(str(it.fspath)), len(rank)))


def fake_devices_env(n: int) -> dict:
    """os.environ for a subprocess with `n` fake CPU devices, keeping the session's XLA flags."""
    flags = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
    return dict(os.environ, XLA_FLAGS=flags.strip())


def pytest_configure(config):
    """XLA at backend optimization level 0 without LLVM's expensive passes (RLPT_TEST_XLA_OPT=1
    keeps the defaults): most of the suite's time is compiling programs that then run for
    milliseconds, and level 0 compiles them in about half the time (test_step.py +
    test_preference_step.py: 207 -> 112 CPU seconds); `--xla_llvm_disable_expensive_passes`
    (what `jax_disable_most_optimizations` also sets) takes about 10% more off
    (tests/algorithms/test_zoo.py, A/B twice in both orders: 66/63 s -> 56/58 s). Both change
    code generation, not semantics: the golden test's recorded metrics of the default-level code
    still match at their tolerances.

    One persistent XLA compilation cache per test session, so a program compiled once is
    loaded, not recompiled, by the other tests, the xdist workers and the subprocesses the tests
    start (they all inherit this environment; jax reads it when it is imported). Most of the
    suite's time is compilation: a restarted trainer or a second process layout runs the same
    programs again. The cache is keyed on the program, the jax version and the flags, and a
    loaded program is the compiled one, so results are unchanged. A fresh directory per
    session (removed at the end) keeps one session's timings independent of the last; set
    JAX_COMPILATION_CACHE_DIR yourself to keep one across sessions."""
    if hasattr(config, "workerinput") or "_RLPT_TEST_ENV" in os.environ:
        return
    os.environ["_RLPT_TEST_ENV"] = "1"
    if os.environ.get("RLPT_TEST_XLA_OPT", "0") == "0":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_backend_optimization_level=0"
                                   + " --xla_llvm_disable_expensive_passes=true").strip()
    if _CACHE_ENV in os.environ:
        return
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="rlpt-tests-xla-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    config._rlpt_cache_dir = os.environ[_CACHE_ENV]


def pytest_unconfigure(config):
    cache = getattr(config, "_rlpt_cache_dir", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)

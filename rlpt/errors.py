"""The errors a user causes and can fix: a config value, a command-line argument, a file, a row of
data. Each is a `UserError` (a ValueError, so `except ValueError` still catches it) whose text
names the field, file or line and says what to do; the entry points (rlpt.io.cli.user_errors)
print it as one line on stderr and exit with status 2, without a traceback.

A full disk is reported the same way (`DiskFullError`, naming the file that could not be
written; the entry point adds the last complete checkpoint). Anything else that escapes an entry
point is a bug or a fault and keeps its traceback."""
import contextlib
import errno
import logging


class UserError(ValueError):
    """A mistake in what the user gave (module doc); the message is the whole report."""


class DiskFullError(UserError):
    """A write failed because the disk is full (module doc)."""


def is_disk_full(e) -> bool:
    """Whether `e` (an exception, or a message) is a failed write on a full disk: an OSError
    ENOSPC, or the text of one that a library (tensorstore, under orbax) re-raised as another
    type."""
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or \
        "No space left on device" in str(e) or "os_error_code='28'" in str(e)


def one_line(message) -> str:
    """`message` on one line (newlines and runs of spaces collapsed)."""
    return " ".join(str(message).split())


class _Drop(logging.Filter):
    def __init__(self, drop):
        super().__init__()
        self.drop = drop

    def filter(self, record):
        return not self.drop(record)


@contextlib.contextmanager
def quiet_absl_logs(drop=lambda record: True):
    """Within the block, the records of the `absl` logger (orbax logs there) for which
    `drop(record)` holds are not printed: for a failure whose one-line report says it all."""
    f = _Drop(drop)
    logging.getLogger("absl").addFilter(f)
    try:
        yield
    finally:
        logging.getLogger("absl").removeFilter(f)

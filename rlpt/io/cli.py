"""The command line of the trainers (`python -m rlpt.train`, `python -m rlpt.preference.train`):
`--config=<file>[:args] --config.key=value --workdir=DIR`, an unknown key as one line, and
`user_errors`: every entry point's report of a UserError (or a full disk) as one line, exit 2."""
import contextlib
import re
import sys

from rlpt.errors import DiskFullError, UserError, is_disk_full, one_line, quiet_absl_logs
from rlpt.io.checkpoints import last_complete_checkpoint


def _disk_full_record(record) -> bool:
    return is_disk_full(record.getMessage()) or bool(
        record.exc_info and is_disk_full(record.exc_info[1]))


@contextlib.contextmanager
def user_errors(prog: str, workdir: str = ""):
    """Around an entry point's work: a UserError becomes one line on stderr, `<prog>: error:
    <message>`, and exit status 2 (no traceback: the message names the field, file or line). A
    full disk is reported the same way, naming what could not be written and the workdir's last
    complete checkpoint (which the failed write never touches). Anything else keeps its
    traceback."""
    try:
        with quiet_absl_logs(_disk_full_record):  # orbax logs a failed write with a traceback
            yield
        return
    except UserError as e:
        error = e
    except Exception as e:  # noqa: BLE001 - a full disk surfaces as OSError or ValueError
        if not is_disk_full(e):
            raise
        error = DiskFullError(f"disk full: {one_line(e)}")
    message = one_line(error)
    if isinstance(error, DiskFullError):
        last = last_complete_checkpoint(workdir) if workdir else None
        message += (f"; the last complete checkpoint, {last}, is intact: free space and rerun "
                    "the same command to resume it" if last else
                    "; no checkpoint was complete yet: free space and rerun the command")
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def cli_main(run_fn, argv=None, prog: str = "rlpt.train"):
    """`--config=<file>[:args] --workdir=DIR` (absl + ml_collections config flags), then
    `run_fn(config, workdir)` under `user_errors`; orbax's per-save INFO logs are silenced."""
    from absl import app, flags
    from absl import logging as absl_logging
    from ml_collections import config_flags

    cfg_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                               lock_config=True)
    flags.DEFINE_string("workdir", None, "Where the run writes (and resumes from).")
    flags.DEFINE_bool("allow_config_change", False, "Resume in a workdir whose config.json "
                      "differs from this config (the old one is kept as config.<time>.json).")
    flags.mark_flags_as_required(["config", "workdir"])

    def _main(_):
        absl_logging.set_verbosity(absl_logging.WARNING)
        kw = {"allow_config_change": True} if flags.FLAGS.allow_config_change else {}
        with user_errors(prog, flags.FLAGS.workdir):
            run_fn(cfg_flag.value, flags.FLAGS.workdir, **kw)

    def parse(args):  # absl's parser, but a bad override is one line, not a traceback
        try:
            return app.parse_flags_with_usage(args)
        except (AttributeError, KeyError) as e:
            sys.exit(unknown_key_message(args, e))

    app.run(_main, argv=argv, flags_parser=parse)


def unknown_key_message(argv, error) -> str:
    """One line for an override of a key the config does not have (ml_collections raises an
    AttributeError / KeyError whose text names the missing part and maybe a suggestion)."""
    text = str(error).replace("\\n", "\n").replace("\\'", "'")
    first, _, hint = text.partition("\n")
    missing = set(re.findall(r"[A-Za-z0-9_]+", first))
    keys = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    bad = [k for k in keys if missing & set(k.split("."))]
    hint = hint.strip().strip("'\"")
    return (f"error: unknown config key {bad[0] if bad else first.strip(chr(39))}"
            + (f" ({hint})" if hint else ""))

"""The command line of the trainers (`python -m rlpt.train`, `python -m rlpt.preference.train`):
`--config=<file>[:args] --config.key=value --workdir=DIR` (`--help`: USAGE, exit 0; a mistake in
the command line: one line, exit 2), and `user_errors`: every entry point's report of a
UserError or a full disk as one line (exit 2) and of Ctrl-C with the checkpoint a rerun resumes
from (exit 130)."""
import contextlib
import os
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
    complete checkpoint (which the failed write never touches). Ctrl-C (KeyboardInterrupt) says
    where the run can resume from, exit status 130. Anything else keeps its traceback."""
    try:
        with quiet_absl_logs(_disk_full_record):  # orbax logs a failed write with a traceback
            yield
        return
    except KeyboardInterrupt:
        last = last_complete_checkpoint(workdir) if workdir else None
        where = (f"; the last complete checkpoint is {last}: rerun the same command to resume "
                 "from it" if last else "; no checkpoint yet: rerunning the same command starts "
                 "over" if workdir else "")
        print(f"\n{prog}: interrupted{where}", file=sys.stderr, flush=True)
        sys.exit(130)
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


USAGE = """usage: python -m {prog} --config=FILE[:ARGS] --workdir=DIR [--config.KEY=VALUE ...]
                          [--allow_config_change]

  --config=FILE[:ARGS]   an experiment config (configs/*.py) and its arguments after ':',
                         e.g. configs/grpo_arith.py:size=nano,quick=1 (each file's docstring
                         lists its arguments)
  --config.KEY=VALUE     override one field of that config, e.g. --config.rl.steps=100
                         (a dotted key; an unknown key is refused)
  --workdir=DIR          where the run writes config.json, metrics.jsonl, checkpoints and
                         results; rerunning the same command there resumes the run
  --allow_config_change  resume in a workdir whose config.json differs from this config (the
                         old one is kept beside it as config.<time>.json)
  -h, --help             this message
"""


def cli_main(run_fn, argv=None, prog: str = "rlpt.train"):
    """`--config=<file>[:args] --config.key=value --workdir=DIR` (absl + ml_collections config
    flags), then `run_fn(config, workdir)` under `user_errors`. A bad command line is one line
    on stderr and exit status 2 (an unknown key, a bad argument of the config file, a missing
    file or flag); `--help` prints USAGE and exits 0. Orbax's per-save INFO logs are
    silenced."""
    from absl import app, flags
    from absl import logging as absl_logging
    from ml_collections import config_flags

    cfg_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                               lock_config=True)
    flags.DEFINE_string("workdir", None, "Where the run writes (and resumes from).")
    flags.DEFINE_bool("allow_config_change", False, "Resume in a workdir whose config.json "
                      "differs from this config (the old one is kept as config.<time>.json).")

    def _main(_):
        absl_logging.set_verbosity(absl_logging.WARNING)
        kw = {"allow_config_change": True} if flags.FLAGS.allow_config_change else {}
        with user_errors(prog, flags.FLAGS.workdir):
            run_fn(cfg_flag.value, flags.FLAGS.workdir, **kw)

    def parse(args):  # absl's parser; every mistake one line, not a traceback
        if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in args[1:]):
            print(USAGE.format(prog=prog), end="")
            sys.exit(0)
        bad = command_line_error(args)
        if bad is None:
            try:
                return flags.FLAGS(args)
            except (AttributeError, KeyError) as e:
                bad = unknown_key_message(args, e)
            except flags.Error as e:
                bad = flag_error_message(str(e))
        print(f"{prog}: {bad} (--help lists the flags)", file=sys.stderr, flush=True)
        sys.exit(2)

    app.run(_main, argv=argv, flags_parser=parse)


def command_line_error(args):
    """The one-line error of a command line missing --config / --workdir or naming a config
    file that does not exist (ml_collections would report it at first use), else None."""
    given = {}
    for i, a in enumerate(args[1:], 1):   # --flag=value, or --flag value
        name, eq, value = a.partition("=")
        given[name] = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    for flag in ("--config", "--workdir"):
        if not given.get(flag):
            return f"error: {flag}=... is required"
    path = given["--config"].split(":", 1)[0]
    if not os.path.isfile(path):
        return f"error: --config: no such file {path!r}"
    return None


def flag_error_message(text: str) -> str:
    """One line of absl's error for a bad flag value: for a config file that raised (e.g. an
    unknown argument after ':'), the flag and the exception's last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    flag = lines[0].split(": ", 1)[0] if lines[0].startswith("flag --") else ""
    last = re.sub(r"^(?:[\w.]+\.)?UserError: ", "", lines[-1])   # its message says it all
    return f"error: {flag[len('flag '):]}: {last}" if flag and len(lines) > 1 else \
        f"error: {lines[0]}"


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

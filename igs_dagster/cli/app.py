"""`igs`: send work to the pipelines, read the system log, inspect runs, run the demo.

Every command validates settings first. A problem with the input or the settings is reported
as one line on stderr (`igs: error: ...`, exit 2) and changes nothing. An unexpected failure
is one line too (exit 1); set IGS_DEBUG=1 (or pass --debug) to see its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from igs_dagster.cli import (
    doctor,
    feeds,
    log,
    loop,
    runs,
    search,
    serve,
    settings_view,
    video,
    videos,
)
from igs_dagster.cli.common import UsageError, _Parser
from igs_dagster.core.errors import IgsError
from igs_dagster.core.fsutil import tighten_dir
from igs_dagster.core.settings import load_settings
from igs_dagster.core.text import one_line

DEBUG_ENV = serve.DEBUG_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="igs", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks (same as IGS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (video, videos, feeds, search, log, runs, doctor, serve, loop, settings_view):
        group.add_commands(sub)
    return parser


def _one_line(text: str) -> str:
    from igs_dagster.core.redact import redact

    return one_line(redact(str(text))) or "failed"


def _describe_unexpected(err: BaseException) -> tuple[int, str]:
    """(exit code, message) for an exception that is not an IgsError."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        from igs_dagster.core.events import describe_validation_error

        return 2, describe_validation_error(err)
    if isinstance(err, UnicodeError):
        return 2, f"not UTF-8 text ({err.reason})" if hasattr(err, "reason") else str(err)
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else ""
        return 2, f"{err.strerror or err}{f': {where}' if where else ''}"
    import sqlite3

    if isinstance(err, sqlite3.Error):  # locked, read-only or corrupt queue/instance database
        return 1, f"database error: {err}"
    return 1, (f"unexpected {type(err).__name__}: {err} "
               f"(a bug? rerun with {DEBUG_ENV}=1 for the traceback)")


def _settings(args: argparse.Namespace):
    """The validated settings, after a warning for each misspelt IGS_* variable. A command
    that diagnoses (`igs status`: `lenient_settings`) still runs on invalid settings, with the
    bad values left out and the error line in `args.settings_error`."""
    from igs_dagster.core.errors import SettingsError
    from igs_dagster.core.settings_sources import lenient_settings, misspelt_variables

    try:
        settings = load_settings()
    except SettingsError as err:
        if not getattr(args, "lenient_settings", False):
            raise
        args.settings_error = str(err)
        return lenient_settings()
    for warning in misspelt_variables():  # a name inside a known group fails the load instead
        print(f"igs: warning: {warning}", file=sys.stderr)
    return settings


def main(argv: list[str] | None = None) -> int:
    """Run one command; everything it prints passes `inert.PrintableWriter` (no terminal
    escapes from titles, log lines or PRDs reach the user's terminal)."""
    from igs_dagster.core.fsutil import private_umask
    from igs_dagster.core.inert import PrintableWriter

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableWriter(out), PrintableWriter(err)
    umask = private_umask()  # every file 0600, every folder 0700 (kept across `igs dev`'s exec)
    try:
        return _main(argv)
    finally:
        os.umask(umask)  # for callers in this process (tests); an exec'd process keeps ours
        if isinstance(sys.stdout, PrintableWriter):
            sys.stdout = out
        if isinstance(sys.stderr, PrintableWriter):
            sys.stderr = err


def _main(argv: list[str] | None = None) -> int:
    debug = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        settings = _settings(args)
        tighten_dir(settings.data_dir)  # 0700, also when an older version made it 0755
        return int(args.func(args, settings) or 0)
    except IgsError as err:
        if debug and not isinstance(err, UsageError):
            traceback.print_exc()
        print(f"igs: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `igs log tail | head`: the reader left, nothing to report
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        except OSError:
            pass
        return 0
    except SystemExit as exc:  # --help, or a library calling sys.exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as err:  # noqa: BLE001 - the user gets one line, the traceback on request
        if debug:
            traceback.print_exc()
        code, message = _describe_unexpected(err)
        print(f"igs: error: {_one_line(message)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

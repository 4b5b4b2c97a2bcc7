"""`igs`: send work to the pipelines, read the system log, inspect runs, run the demo.

Every command validates settings first. A problem with the input or the settings is reported
as one line on stderr (`igs: error: ...`, exit 2) and changes nothing. An unexpected failure
is one line too (exit 1); set IGS_DEBUG=1 (or pass --debug) to see its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from igs_dagster.errors import IgsError, PermanentError
from igs_dagster.settings import Settings, load_settings

MAX_TEXT_FILE_BYTES = 20 * 1024 * 1024  # a transcript text is at most 5M characters
DEBUG_ENV = "IGS_DEBUG"  # not a setting: pydantic-settings ignores unknown top-level IGS_* names


class UsageError(IgsError):
    """The command line itself is wrong (argparse)."""


def _one_line(text: str) -> str:
    from igs_dagster.redact import redact

    return " ".join(redact(str(text)).split()) or "failed"


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---- sending work ---------------------------------------------------------------------------

def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.events import VideoDownload, VideoDownloadData
    from igs_dagster.intake import accept, source_for

    events = [VideoDownload(name="video.download", data=VideoDownloadData(url=u)) for u in args.urls]
    # validate everything first: one bad URL queues nothing
    sources = [source_for(e, settings) for e in events]
    if args.dry_run:
        for url, source in zip(args.urls, sources, strict=True):
            print(f"{source.key}\t{source.kind}\t{url}")
        return 0
    for event in events:
        print(accept(event, settings).message)
    return 0


def _read_text_file(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_TEXT_FILE_BYTES + 1)
        shown = "stdin"
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise PermanentError(f"text file {name}: {'not a regular file' if path.exists() else 'no such file'}")
        if path.stat().st_size > MAX_TEXT_FILE_BYTES:
            raise PermanentError(f"text file {name} is larger than {MAX_TEXT_FILE_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
        shown = name
    if len(data) > MAX_TEXT_FILE_BYTES:
        raise PermanentError(f"text from {shown} is larger than {MAX_TEXT_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PermanentError(f"text file {shown} is not UTF-8 text") from None
    if "\x00" in text:
        raise PermanentError(f"text file {shown} is binary, not text")
    return text


def cmd_transcript(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.events import TranscriptProcess, TranscriptProcessData
    from igs_dagster.intake import accept

    text = None
    file = None
    if args.text_file is not None:
        if args.text_file == "-" and args.title is None:
            raise PermanentError("--title is required when the text comes from stdin")
        text = _read_text_file(args.text_file)
        default_title = Path(args.text_file).stem
    else:
        file = Path(args.file).expanduser().absolute()  # '..' stays visible and is refused
        default_title = Path(args.file).stem or "untitled"
    data = TranscriptProcessData(
        file=file, text=text, source=args.source,
        title=args.title if args.title is not None else default_title,
    )
    print(accept(TranscriptProcess(name="transcript.process", data=data), settings).message)
    return 0


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.events import ContentSummarize, ContentSummarizeData
    from igs_dagster.intake import accept

    note = Path(args.note).expanduser()
    if not note.is_absolute() and (Path.cwd() / note).exists():
        note = Path.cwd() / note  # relative to where the user is; otherwise to the vault
    event = ContentSummarize(name="content.summarize", data=ContentSummarizeData(note=note))
    print(accept(event, settings).message)
    return 0


def cmd_event(args: argparse.Namespace, settings: Settings) -> int:
    """One raw event, exactly as `POST /events` takes it."""
    from igs_dagster.events import parse_event
    from igs_dagster.intake import accept

    if args.json == "-" or args.json.startswith("@"):
        text = _read_text_file(args.json.removeprefix("@"))
    else:
        text = args.json
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PermanentError(f"event is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise PermanentError("event must be a JSON object {\"name\": ..., \"data\": {...}}")
    result = accept(parse_event(raw), settings)
    if args.print_json:
        _print_json(result.to_json())
    else:
        print(result.message)
    return 0


# ---- system log -----------------------------------------------------------------------------

def cmd_log_write(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.events import parse_event
    from igs_dagster.intake import accept

    # the same model as a `system.log` event: one validation for the CLI and the API
    data = {"action": args.action, "tool": args.tool, "detail": args.detail, "reason": args.reason}
    accept(parse_event({"name": "system.log", "data": data}), settings)
    return 0


def cmd_log_tail(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster import system_log

    try:
        system_log.tail(settings.system_log, args.n, follow=args.follow, as_json=args.json,
                        out=sys.stdout)
    except KeyboardInterrupt:
        pass
    return 0


# ---- runs -----------------------------------------------------------------------------------

def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster import run_report
    from igs_dagster.instance_setup import open_instance

    instance = open_instance(settings)
    runs = run_report.recent_runs(instance, limit=args.limit)
    if args.json:
        _print_json(runs)
    else:
        print(run_report.format_runs(runs))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster import run_report
    from igs_dagster.instance_setup import open_instance

    run_id = args.run_id.strip()
    if len(run_id) < 4 or not all(c in "0123456789abcdef-" for c in run_id.lower()):
        raise PermanentError(f"invalid run id {args.run_id!r}: give the id or a unique prefix (hex, 4+ characters)")
    instance = open_instance(settings)
    detail = run_report.run_detail(instance, run_id)
    if args.json:
        _print_json(detail)
    else:
        print(run_report.format_run(detail))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster import run_report
    from igs_dagster.event_queue import EventQueue
    from igs_dagster.instance_setup import open_instance

    instance = open_instance(settings)
    status = run_report.status(instance, EventQueue(settings.queue_db), settings)
    if args.json:
        _print_json(status)
    else:
        print(run_report.format_status(status))
    return 0


# ---- services -------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.demo import run_demo

    note = run_demo(settings)
    print(note)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.instance_setup import open_instance

    open_instance(settings)  # persistent DAGSTER_HOME + pool limits before anything starts
    argv = [sys.executable, "-m", "dagster", "dev", "-m", "igs_dagster.definitions",
            "-h", args.host, "-p", str(args.port)]
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.api import serve

    serve(settings, host=args.host, port=args.port)
    return 0


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster import service
    from igs_dagster.redact import is_secret_name

    if not args.print:
        raise PermanentError("only --print is supported: copy the files where the hint says")
    files = service.render_services(
        args.kind, python=sys.executable, project_dir=Path.cwd(),
        dagster_home=settings.dagster_home,
        env={k: v for k, v in os.environ.items()
             if k.startswith("IGS_") and not is_secret_name(k) and k != DEBUG_ENV},
    )
    for name, content in files.items():
        print(f"# ---- {name} ----\n{content}")
    print(service.install_hint(args.kind))
    return 0


# ---- parser ---------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `igs: error: <what> (see 'igs send --help')`."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "number"
    return parse


def _port(text: str) -> int:
    value = _count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="igs", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks (same as IGS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("send", help="queue YouTube/web URLs or local files for ingest (works while Dagster is down)")
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("--dry-run", action="store_true", help="print the partition key, queue nothing")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("transcript", help="queue a local audio/video file or a transcript text")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="local audio/video file")
    src.add_argument("--text-file", help="plain-text UTF-8 transcript ('-' = stdin): skips Whisper")
    p.add_argument("--title", help="note title (default: the file name)")
    p.add_argument("--source", default="manual", help="label: podcast, manual, meeting, ...")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("summarize", help="queue (re-)enrichment of a vault note")
    p.add_argument("note", help="note path (absolute, or relative to here or to the vault)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("event", help="queue one raw event, as POST /events takes it")
    p.add_argument("json", metavar="JSON", help="the event JSON, @FILE, or '-' for stdin")
    p.add_argument("--json", dest="print_json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_event)

    log = sub.add_parser("log", help="the system log").add_subparsers(
        dest="log_command", required=True, metavar="COMMAND")
    p = log.add_parser("write", help="append one line")
    p.add_argument("--action", required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--detail", required=True)
    p.add_argument("--reason")
    p.set_defaults(func=cmd_log_write)
    p = log.add_parser("tail", help="show the last lines")
    p.add_argument("-n", type=_count(0), default=20, help="how many lines (default 20)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    p.add_argument("--json", action="store_true", help="canonical JSON lines")
    p.set_defaults(func=cmd_log_tail)

    p = sub.add_parser("status", help="queue, daemon, runs in progress, recent failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("runs", help="recent runs with their steps")
    p.add_argument("--limit", type=_count(1), default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("run", help="one run: steps, durations, errors")
    p.add_argument("run_id", help="run id or a unique prefix of it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="ingest the bundled sample clip through the Dagster assets")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("dev", help="webserver + daemon with the persistent DAGSTER_HOME")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=3000)
    p.set_defaults(func=cmd_dev)
    p = sub.add_parser("api", help="HTTP event API (POST /events, GET /health)")
    p.add_argument("--host", help="address to bind (default IGS_API__HOST, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port (default IGS_API__PORT, 3111; 0 = any free port)")
    p.set_defaults(func=cmd_api)

    svc = sub.add_parser("service", help="always-on service files").add_subparsers(
        dest="svc", required=True, metavar="COMMAND")
    p = svc.add_parser("install", help="render launchd/systemd files")
    p.add_argument("--kind", choices=["systemd", "launchd"], default="launchd" if sys.platform == "darwin" else "systemd")
    p.add_argument("--print", action="store_true", help="print the files (no root needed)")
    p.set_defaults(func=cmd_service)

    try:
        from igs_dagster.loop_cli import add_loop_commands
    except ImportError:  # coding loop not installed in this build
        pass
    else:
        add_loop_commands(sub)
    return parser


def _describe_unexpected(err: BaseException) -> tuple[int, str]:
    """(exit code, message) for an exception that is not an IgsError."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        from igs_dagster.events import describe_validation_error

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


def main(argv: list[str] | None = None) -> int:
    """Run one command; everything it prints passes `inert.PrintableWriter` (no terminal
    escapes from titles, log lines or PRDs reach the user's terminal)."""
    from igs_dagster.inert import PrintableWriter

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableWriter(out), PrintableWriter(err)
    try:
        return _main(argv)
    finally:
        if isinstance(sys.stdout, PrintableWriter):
            sys.stdout = out
        if isinstance(sys.stderr, PrintableWriter):
            sys.stderr = err


def _main(argv: list[str] | None = None) -> int:
    debug = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        settings = load_settings()
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

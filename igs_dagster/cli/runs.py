"""`igs status|runs|run`: the Dagster instance's runs and the daemon, as tables or JSON.

`igs status` and `igs runs` ask the webserver of `igs dev` when it is up (webserver.py: no
Dagster import, well under a second on 1,000 runs: bench figure 14) and read the instance
otherwise; both paths print the same (run_format)."""

from __future__ import annotations

import argparse

from igs_dagster.cli.common import count, print_answer
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings


def _through_webserver(settings: Settings, read):
    """`read(url)` against this deployment's running webserver; None when there is none, it
    does not answer or answers with errors (the caller then reads the instance)."""
    from igs_dagster.core import webserver

    url = webserver.find(settings.data_dir, settings.dagster_home)
    if url is None:
        return None
    try:
        return read(url)
    except webserver.WebserverError:
        return None


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.cli import run_format, run_graphql

    runs = _through_webserver(settings, lambda url: run_graphql.recent_runs(url, limit=args.limit))
    if runs is None:
        from igs_dagster.cli import run_report
        from igs_dagster.defs.instance import open_instance

        runs = run_report.recent_runs(open_instance(settings), limit=args.limit)
    print_answer(args, runs, lambda: run_format.format_runs(runs))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.cli import run_report
    from igs_dagster.defs.instance import open_instance

    run_id = args.run_id.strip()
    if len(run_id) < 4 or not all(c in "0123456789abcdef-" for c in run_id.lower()):
        raise PermanentError(f"invalid run id {args.run_id!r}: give the id or a unique prefix (hex, 4+ characters)")
    instance = open_instance(settings)
    detail = run_report.run_detail(instance, run_id)
    print_answer(args, detail, lambda: run_report.format_run(detail))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.cli import run_format, run_graphql
    from igs_dagster.core.inbox import EventQueue

    queue = EventQueue(settings.queue_db)
    status = _through_webserver(settings, lambda url: run_graphql.status(url, queue, settings))
    if status is None:
        from igs_dagster.cli import run_report
        from igs_dagster.defs.instance import open_instance

        status = run_report.status(open_instance(settings), queue, settings)
    if getattr(args, "settings_error", None):
        status = {"settings_error": args.settings_error, **status}
    from igs_dagster.cli.doctor import status_summary

    checks = status_summary(settings)  # the last `igs doctor` (quick checks when over an hour old)
    print_answer(args, {**status, "doctor": checks},
                 lambda: f"{run_format.format_status(status)}\n{checks['line']}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="queue, daemon, runs in progress, recent failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status, lenient_settings=True)  # it says what is wrong, and runs
    p = sub.add_parser("runs", help="recent runs with their steps")
    p.add_argument("--limit", type=count(1), default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("run", help="one run: steps, durations, errors")
    p.add_argument("run_id", help="run id or a unique prefix of it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

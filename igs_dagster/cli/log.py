"""`igs log write|tail`: the system log from the command line."""

from __future__ import annotations

import argparse
import sys

from igs_dagster.cli.common import count
from igs_dagster.core.settings import Settings


def cmd_log_write(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.events import parse_event
    from igs_dagster.intake import accept

    # the same model as a `system.log` event: one validation for the CLI and the API
    data = {"action": args.action, "tool": args.tool, "detail": args.detail, "reason": args.reason}
    accept(parse_event({"name": "system.log", "data": data}), settings)
    return 0


def cmd_log_tail(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core import system_log

    try:
        system_log.tail(settings.system_log, args.n, follow=args.follow, as_json=args.json,
                        out=sys.stdout)
    except KeyboardInterrupt:
        pass
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    log = sub.add_parser("log", help="the system log").add_subparsers(
        dest="log_command", required=True, metavar="COMMAND")
    p = log.add_parser("write", help="append one line")
    p.add_argument("--action", required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--detail", required=True)
    p.add_argument("--reason")
    p.set_defaults(func=cmd_log_write)
    p = log.add_parser("tail", help="show the last lines")
    p.add_argument("-n", type=count(0), default=20, help="how many lines (default 20)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    p.add_argument("--json", action="store_true", help="canonical JSON lines")
    p.set_defaults(func=cmd_log_tail)

"""`igs doctor`: what a download depends on, one line each (ok / warn / fail, with the fix), and
the summary line `igs status` shows.

The checks live with what they check (video/doctor.py); this module adds the daemon and the
webserver, prints, and keeps the last result in `<data>/doctor.json` so `igs status` can show it
without paying for the checks (about a second: yt-dlp's import, the runtime's `--version`)
more than once an hour. Exit status 1 when a check fails: a video sent now would fail.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.cli.common import print_answer
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import one_line

CACHE_FILE = "doctor.json"
CACHE_MAX_AGE_S = 3600


def _daemon(settings: Settings):
    from igs_dagster.cli.daemon_probe import local_daemon_pids
    from igs_dagster.video.doctor import Check

    pids = local_daemon_pids(settings.dagster_home)
    if pids:
        return Check("daemon", "ok", f"running (pid {', '.join(map(str, pids))})")
    return Check("daemon", "warn", "not running: sent videos wait in the inbox",
                 "start `igs dev` or the service (`igs service install`)")


def _webserver(settings: Settings):
    from igs_dagster.core import webserver
    from igs_dagster.video.doctor import Check

    url = webserver.find(settings.data_dir, settings.dagster_home)
    if url:
        return Check("webserver", "ok", f"{url} (igs dev)")
    return Check("webserver", "ok", "not running (optional: the UI, and a faster `igs status`)")


def run_checks(settings: Settings, *, quick: bool = False, at: float | None = None) -> list:
    """Every check, video pipeline first; the result is cached for `igs status`."""
    from igs_dagster.core.fsutil import atomic_write_json
    from igs_dagster.video.doctor import guarded, video_checks

    checks = video_checks(settings, quick=quick)
    checks += [guarded("daemon", lambda: _daemon(settings)),
               guarded("webserver", lambda: _webserver(settings))]
    try:
        atomic_write_json(_cache(settings), {"at": at or time.time(), "quick": quick,
                                             "checks": [c.to_json() for c in checks]})
    except OSError:
        pass  # a read-only data folder: the report is printed all the same
    return checks


def _cache(settings: Settings) -> Path:
    return settings.data_dir / CACHE_FILE


def summary(checks: list[dict], checked_at: float | None = None) -> str:
    """`doctor: 10 ok, 1 warn (yt-dlp), 0 fail` (+ when the checks ran, for a cached result)."""
    counts = {s: [c["name"] for c in checks if c["status"] == s] for s in ("ok", "warn", "fail")}
    parts = [f"{len(counts['ok'])} ok"]
    for status in ("warn", "fail"):
        names = counts[status]
        parts.append(f"{len(names)} {status}" + (f" ({', '.join(names)})" if names else ""))
    when = ""
    if checked_at is not None:
        when = " (checked " + datetime.fromtimestamp(checked_at, UTC).strftime("%Y-%m-%d %H:%M UTC") + ")"
    return f"doctor: {', '.join(parts)}{when}; details: `igs doctor`"


def status_summary(settings: Settings) -> dict:
    """For `igs status`: the last doctor result (run the quick checks when it is over an hour
    old or missing): {"line", "fail", "warn", "checked_at"}."""
    path = _cache(settings)
    try:
        cached = json.loads(path.read_text("utf-8"))
        at, checks = float(cached["at"]), list(cached["checks"])
        if not 0 <= time.time() - at <= CACHE_MAX_AGE_S:
            raise ValueError("stale")
    except (OSError, ValueError, KeyError, TypeError):
        at = time.time()
        checks = [c.to_json() for c in run_checks(settings, quick=True, at=at)]
    return {"line": summary(checks, at), "checked_at": at,
            "fail": [c["name"] for c in checks if c["status"] == "fail"],
            "warn": [c["name"] for c in checks if c["status"] == "warn"]}


def format_checks(checks: list) -> str:
    """One row per check (STATUS, CHECK, DETAIL); a fix goes on the line below, after `→`."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        status = c.status.upper() if c.status != "ok" else "ok"
        lines.append(f"{status:<5} {c.name:<{width}}  {one_line(c.detail, 300)}")
        if c.fix:
            lines.append(f"{'':<5} {'':<{width}}  → {one_line(c.fix, 300)}")
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks(settings, quick=args.quick)
    failed = any(c.status == "fail" for c in checks)
    print_answer(args, {"ok": not failed, "checks": [c.to_json() for c in checks]},
                 lambda: f"{format_checks(checks)}\n"
                 f"{summary([c.to_json() for c in checks]).split(';')[0]}")
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what a download depends on: yt-dlp, JS runtime, cookies, "
                                      "ffmpeg, archive, model, agents, daemon, free space")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="do not contact the NAS or read a browser's cookie store")
    p.set_defaults(func=cmd_doctor)

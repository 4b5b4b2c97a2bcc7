"""What `igs status|runs|run` show, built and printed the same way whichever reader fetched
the runs: the Dagster instance (run_report) or the running webserver's GraphQL API
(run_graphql). Plain data in, dicts and text out; it never imports Dagster."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from igs_dagster.core.text import one_line, table

ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")  # DagsterRunStatus values
INBOX_SENSOR = "igs_events"  # defs/events.py: its cursor holds the inbox's last event id
INBOX_EVENTS = ("video.download", "transcript.process", "content.summarize")
DAEMON_FRESH_S = 120  # Dagster's own heartbeat tolerance (too slow to notice a death)
TICK_FRESH_S = 15  # the inbox sensor ticks every ~5 s while a daemon runs
MAX_ERROR_CHARS = 1000  # a reason may end with the command that fixes it: not clipped short
ACTIVE_LIMIT = 100
FAILURES_LIMIT = 5  # the newest failed runs `igs status` shows, of those a later run did not fix
PARTITION_TAG = "dagster/partition"
CHECKS_LIMIT = 10


def inbox_cursor(raw: str | None) -> int | None:
    """The inbox event id in the `igs_events` sensor's cursor (0: none yet; None: unreadable)."""
    if not raw:
        return 0
    try:
        return int(json.loads(raw).get("inbox") or 0)
    except (ValueError, AttributeError):
        return None


def tick_problem(status: str | None, skip_reason: str | None, error: str | None) -> str | None:
    """Why a sensor tick did no work, in one line: its error's first line (a FAILURE tick),
    or the skip reason the `igs_events` sensor gives while the settings are invalid."""
    from igs_dagster.core.settings_sources import SENSOR_SETTINGS_INVALID
    from igs_dagster.core.text import first_line

    if status == "FAILURE":
        return f"its last tick failed: {first_line(error, MAX_ERROR_CHARS) or 'no error recorded'}"
    if skip_reason and skip_reason.startswith(SENSOR_SETTINGS_INVALID):
        return one_line(skip_reason, MAX_ERROR_CHARS * 2)
    return None


def ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds") if value else None


def duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start and end else None


def run_summary(run_id: str, job: str, status: str, tags: dict[str, str], created: float | None,
                start: float | None, end: float | None) -> dict:
    return {
        "run_id": run_id,
        "job": job,
        "status": status,
        "partition": tags.get(PARTITION_TAG),
        "trigger": tags.get("igs/trigger") or tags.get("dagster/sensor_name") or "manual",
        "created": ts(created),
        "duration_s": duration(start, end),
    }


def step_summary(step: str, status: str | None, attempts: int | None, start: float | None,
                 end: float | None, error: str | None) -> dict:
    return {
        "step": step,
        "status": status or "IN_PROGRESS",
        "attempts": attempts or 1,
        "duration_s": duration(start, end),
        "error": error,
    }


def daemon_view(pids: list[int], last_tick: float | None, last_heartbeat: float | None,
                local_service: bool = False) -> dict:
    """The one verdict on the daemon that every line of `igs status` follows. Running when a
    daemon process of this deployment lives on this machine; or, for a deployment whose daemon
    runs elsewhere (a container, another host), when the inbox sensor ticked in the last
    TICK_FRESH_S. A deployment served by `igs dev` here (`local_service`: its service lock
    exists in the data folder) has its daemon here, so the process check alone decides: a tick
    from the moments before it stopped is no sign of life. Heartbeats alone lag: a dead
    daemon's last one stays "fresh" for DAEMON_FRESH_S."""
    tick_age = round(time.time() - last_tick, 1) if last_tick else None
    fresh_tick = tick_age is not None and tick_age < TICK_FRESH_S
    elsewhere = not pids and fresh_tick and not local_service
    return {
        "running": bool(pids) or elsewhere,
        "where": "here" if pids else ("elsewhere" if elsewhere else None),
        "pids": pids,
        "inbox_sensor_tick_age_s": tick_age,
        "last_heartbeat": ts(last_heartbeat),
    }


def status_view(settings, queue, *, pids: list[int], last_tick: float | None,
                last_heartbeat: float | None, cursor: int | None, active: list[dict],
                failures: list[dict], checks: list[dict], sensor_problem: str | None = None) -> dict:
    """Inbox backlog, daemon liveness, the settings the runs see, active runs, the last
    failures with their errors and failed checks (each check's `at` a timestamp)."""
    from igs_dagster.cli.settings_view import runs_settings
    from igs_dagster.core.service_lock import lock_path

    last_id = queue.last_id()
    waiting = len(queue.after(cursor or 0, limit=10_000, names=INBOX_EVENTS)) if last_id > (cursor or 0) else 0
    daemon = daemon_view(pids, last_tick, last_heartbeat, lock_path(settings.data_dir).exists())
    return {
        "dagster_home": str(settings.dagster_home),
        "daemon": daemon,
        "settings": runs_settings(settings, daemon["pids"], elsewhere=daemon["where"] == "elsewhere"),
        "queue": {"last_event_id": last_id, "sensor_cursor": cursor, "waiting": waiting},
        "sensor_problem": sensor_problem,
        "active_runs": active,
        "recent_failures": failures,
        "failed_checks": [{**c, "at": ts(c["at"])}
                          for c in sorted(checks, key=lambda c: -c["at"])][:CHECKS_LIMIT],
    }


def format_runs(runs: list[dict]) -> str:
    if not runs:
        return "no runs yet"
    rows = []
    for run in runs:
        failed = [s["step"] for s in run["steps"] if s["status"] == "FAILURE"]
        steps = f"{sum(s['status'] == 'SUCCESS' for s in run['steps'])}/{len(run['steps'])} ok"
        rows.append([run["run_id"][:8], run["job"], run["status"], run["partition"] or "-",
                     run["trigger"], run["created"] or "-", fmt_s(run["duration_s"]),
                     steps + (f" (failed: {', '.join(failed)})" if failed else "")])
    return table(rows, ["RUN", "JOB", "STATUS", "PARTITION", "TRIGGER", "CREATED", "TIME", "STEPS"])


def format_run(detail: dict) -> str:
    head = (f"run {detail['run_id']}  {detail['job']}  {detail['status']}  "
            f"partition={detail['partition'] or '-'}  {fmt_s(detail['duration_s'])}")
    rows = [[s["step"], s["status"], str(s["attempts"]), fmt_s(s["duration_s"]), s["error"] or ""]
            for s in detail["steps"]]
    body = table(rows, ["STEP", "STATUS", "TRIES", "TIME", "ERROR"]) if rows else "no steps ran"
    run_error = detail["errors"].get("(run)")
    return "\n".join([head, body] + ([f"run error: {run_error}"] if run_error else []))


def format_status(st: dict) -> str:
    daemon = st["daemon"]
    queue = st["queue"]
    lines = [
        f"DAGSTER_HOME {st['dagster_home']}",
        ("daemon: running" + (f" (pid {', '.join(map(str, daemon['pids']))})" if daemon["pids"]
                              else " elsewhere (no daemon process on this machine)")
         + (f"; inbox sensor ticked {daemon['inbox_sensor_tick_age_s']:.0f} s ago"
            if daemon["inbox_sensor_tick_age_s"] is not None else "")) if daemon["running"] else
        f"daemon: NOT running (last heartbeat {daemon['last_heartbeat'] or 'never'}); "
        "queued events wait until it starts (igs dev)",
        f"inbox: {queue['waiting']} event(s) waiting for the sensor "
        f"(last event #{queue['last_event_id']}, handled up to #{queue['sensor_cursor'] or 0})",
    ]
    if st.get("sensor_problem"):
        lines.insert(2, f"inbox sensor: NOT WORKING: {st['sensor_problem']}")
    if st.get("settings_error"):
        lines.insert(0, f"settings here: INVALID: {st['settings_error']} "
                        "(shown below without the bad values)")
    if st.get("settings"):
        from igs_dagster.cli.settings_view import format_settings

        lines += format_settings(st["settings"])
    lines.append(f"active runs: {len(st['active_runs'])}")
    for run in st["active_runs"]:
        lines.append(f"  {run['run_id'][:8]} {run['job']} {run['status']} {run['partition'] or ''}")
    lines.append(f"recent failures: {len(st['recent_failures'])}")
    for run in st["recent_failures"]:
        steps = {k: v for k, v in run["errors"].items() if k != "(run)"}  # the run's own line
        for step, err in (steps or run["errors"]).items():  # only when no step says more
            lines.append(f"  {run['run_id'][:8]} {run['partition'] or ''} {step}: {err}")
    checks = st.get("failed_checks") or []
    lines.append(f"failed checks: {len(checks)}")
    for c in checks:
        lines.append(f"  {c['partition'] or '-'} {c['check']}{' (blocking)' if c['blocking'] else ''}: "
                     f"{c['description']}")
    return "\n".join(lines)


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"

"""Runs and steps read from the Dagster instance, for `igs status|runs|run` (tables or JSON).

Errors are one line each: a failed step shows its `Failure` description (or the first line of
its error), never a traceback.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import table
from igs_dagster.defs.failures import run_failure_reasons

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
INBOX_SENSOR = "igs_events"  # defs/events.py: its cursor holds the inbox's last event id
INBOX_EVENTS = ("video.download", "transcript.process", "content.summarize")
DAEMON_FRESH_S = 120  # Dagster's own heartbeat tolerance (too slow to notice a death)
TICK_FRESH_S = 15  # the inbox sensor ticks every ~5 s while a daemon runs
MAX_ERROR_CHARS = 500


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds") if value else None


def _duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start and end else None


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    return run_failure_reasons(instance, run_id, MAX_ERROR_CHARS)


def _run_summary(record) -> dict:
    run = record.dagster_run
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "partition": run.tags.get("dagster/partition"),
        "trigger": run.tags.get("igs/trigger") or run.tags.get("dagster/sensor_name") or "manual",
        "created": _ts(record.create_timestamp.timestamp()),
        "duration_s": _duration(record.start_time, record.end_time),
    }


def recent_runs(instance: dg.DagsterInstance, limit: int = 20) -> list[dict]:
    """The last `limit` runs, newest first, each with its steps."""
    if limit < 1:
        raise PermanentError(f"limit must be at least 1, got {limit}")
    runs = []
    for record in instance.get_run_records(limit=limit):
        summary = _run_summary(record)
        summary["steps"] = _steps(instance, record.dagster_run.run_id)
        runs.append(summary)
    return runs


def _steps(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    errors = _step_errors(instance, run_id)
    steps = []
    for stat in instance.get_run_step_stats(run_id):
        steps.append({
            "step": stat.step_key,
            "status": stat.status.value if stat.status else "IN_PROGRESS",
            "attempts": stat.attempts or 1,
            "duration_s": _duration(stat.start_time, stat.end_time),
            "error": errors.get(stat.step_key),
        })
    return steps


def run_detail(instance: dg.DagsterInstance, run_id: str) -> dict:
    """One run by id or unique id prefix (searched among the last 500 runs)."""
    run_id = run_id.strip().lower()
    if not run_id:
        raise PermanentError("give a run id")
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1)
    if not records:
        matches = [r for r in instance.get_run_records(limit=500) if r.dagster_run.run_id.startswith(run_id)]
        if len(matches) != 1:
            raise PermanentError(f"no run {run_id!r}" if not matches else f"run id {run_id!r} is ambiguous")
        records = matches
    detail = _run_summary(records[0])
    detail["steps"] = _steps(instance, records[0].dagster_run.run_id)
    detail["errors"] = _step_errors(instance, records[0].dagster_run.run_id)
    return detail


def _sensor_cursor(instance: dg.DagsterInstance, name: str) -> int | None:
    """The inbox event id the sensor has handled up to (None: it never ticked)."""
    for state in instance.all_instigator_state():
        if state.name == name:
            cursor = getattr(state.instigator_data, "cursor", None)
            try:
                return int(json.loads(cursor).get("inbox") or 0) if cursor else 0
            except (ValueError, AttributeError):
                return None
    return None


def _last_tick(instance: dg.DagsterInstance, name: str) -> float | None:
    for state in instance.all_instigator_state():
        if state.name == name:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            return ticks[0].timestamp if ticks else None
    return None


def _daemon(instance: dg.DagsterInstance, settings=None) -> dict:
    """Running when a daemon process of this deployment lives on this machine, or the inbox
    sensor ticked in the last TICK_FRESH_S (a daemon elsewhere: container, service). Heartbeats
    alone lag: a dead daemon's last one stays "fresh" for DAEMON_FRESH_S."""
    from igs_dagster.cli.daemon_probe import local_daemon_pids

    beats = instance.get_daemon_heartbeats()
    last = max((b.timestamp for b in beats.values()), default=None)
    pids = local_daemon_pids(settings.dagster_home) if settings is not None else []
    tick = _last_tick(instance, INBOX_SENSOR)
    tick_age = round(time.time() - tick, 1) if tick else None
    fresh_tick = tick_age is not None and tick_age < TICK_FRESH_S
    return {
        "running": bool(pids) or fresh_tick,
        "pids": pids,
        "inbox_sensor_tick_age_s": tick_age,
        "last_heartbeat": _ts(last),
    }


def status(instance: dg.DagsterInstance, queue, settings) -> dict:
    """Inbox backlog, daemon liveness, active runs and the last failures with their errors."""
    active = instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE), limit=100)
    failed = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=5
    )
    cursor = _sensor_cursor(instance, INBOX_SENSOR)
    last_id = queue.last_id()
    waiting = len(queue.after(cursor or 0, limit=10_000, names=INBOX_EVENTS)) if last_id > (cursor or 0) else 0
    from igs_dagster.cli.settings_view import runs_settings

    daemon = _daemon(instance, settings)
    return {
        "dagster_home": str(settings.dagster_home),
        "daemon": daemon,
        "settings": runs_settings(settings, daemon["pids"]),
        "queue": {"last_event_id": last_id, "sensor_cursor": cursor, "waiting": waiting},
        "active_runs": [_run_summary(r) for r in active],
        "recent_failures": [
            {**_run_summary(r), "errors": _step_errors(instance, r.dagster_run.run_id)} for r in failed
        ],
        "failed_checks": _failed_checks(instance),
    }


def _failed_checks(instance: dg.DagsterInstance) -> list[dict]:
    from igs_dagster.defs.video.checks import failed_checks

    return [{**c, "at": _ts(c["at"])} for c in failed_checks(instance)][:10]


def format_runs(runs: list[dict]) -> str:
    if not runs:
        return "no runs yet"
    rows = []
    for run in runs:
        failed = [s["step"] for s in run["steps"] if s["status"] == "FAILURE"]
        steps = f"{sum(s['status'] == 'SUCCESS' for s in run['steps'])}/{len(run['steps'])} ok"
        rows.append([run["run_id"][:8], run["job"], run["status"], run["partition"] or "-",
                     run["trigger"], run["created"] or "-", _fmt_s(run["duration_s"]),
                     steps + (f" (failed: {', '.join(failed)})" if failed else "")])
    return table(rows, ["RUN", "JOB", "STATUS", "PARTITION", "TRIGGER", "CREATED", "TIME", "STEPS"])


def format_run(detail: dict) -> str:
    head = (f"run {detail['run_id']}  {detail['job']}  {detail['status']}  "
            f"partition={detail['partition'] or '-'}  {_fmt_s(detail['duration_s'])}")
    rows = [[s["step"], s["status"], str(s["attempts"]), _fmt_s(s["duration_s"]), s["error"] or ""]
            for s in detail["steps"]]
    body = table(rows, ["STEP", "STATUS", "TRIES", "TIME", "ERROR"]) if rows else "no steps ran"
    run_error = detail["errors"].get("(run)")
    return "\n".join([head, body] + ([f"run error: {run_error}"] if run_error else []))


def format_status(st: dict) -> str:
    daemon = st["daemon"]
    queue = st["queue"]
    lines = [
        f"DAGSTER_HOME {st['dagster_home']}",
        ("daemon: running" + (f" (pid {', '.join(map(str, daemon['pids']))})" if daemon["pids"] else "")
         + (f"; inbox sensor ticked {daemon['inbox_sensor_tick_age_s']:.0f} s ago"
            if daemon["inbox_sensor_tick_age_s"] is not None else "")) if daemon["running"] else
        f"daemon: NOT running (last heartbeat {daemon['last_heartbeat'] or 'never'}); "
        "queued events wait until it starts (igs dev)",
        f"inbox: {queue['waiting']} event(s) waiting for the sensor "
        f"(last event #{queue['last_event_id']}, handled up to #{queue['sensor_cursor'] or 0})",
    ]
    if st.get("settings"):
        from igs_dagster.cli.settings_view import format_settings

        lines += format_settings(st["settings"])
    lines.append(f"active runs: {len(st['active_runs'])}")
    for run in st["active_runs"]:
        lines.append(f"  {run['run_id'][:8]} {run['job']} {run['status']} {run['partition'] or ''}")
    lines.append(f"recent failures: {len(st['recent_failures'])}")
    for run in st["recent_failures"]:
        for step, err in run["errors"].items():
            lines.append(f"  {run['run_id'][:8]} {run['partition'] or ''} {step}: {err}")
    checks = st.get("failed_checks") or []
    lines.append(f"failed checks: {len(checks)}")
    for c in checks:
        lines.append(f"  {c['partition'] or '-'} {c['check']}{' (blocking)' if c['blocking'] else ''}: "
                     f"{c['description']}")
    return "\n".join(lines)


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"

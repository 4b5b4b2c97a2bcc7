"""Runs and steps read from the Dagster instance, for `igs status|runs|run` (tables or JSON)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from igs_dagster.errors import PermanentError

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds") if value else None


def _duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start and end else None


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.is_step_failure and event.step_failure_data.error:
            message = event.step_failure_data.error.message.strip().splitlines()
            user = event.step_failure_data.user_failure_data
            desc = (user.description if user and user.description else None) or (message[0] if message else "")
            errors[event.step_key or "?"] = desc
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            errors.setdefault("(run)", record.event_log_entry.message or "run failed")
    return errors


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


def status(instance: dg.DagsterInstance, queue, settings) -> dict:
    active = instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE), limit=100)
    failed = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=5
    )
    return {
        "dagster_home": str(settings.dagster_home),
        "queued_events": queue.last_id(),
        "active_runs": [_run_summary(r) for r in active],
        "recent_failures": [
            {**_run_summary(r), "errors": _step_errors(instance, r.dagster_run.run_id)} for r in failed
        ],
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


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
    return _table(rows, ["RUN", "JOB", "STATUS", "PARTITION", "TRIGGER", "CREATED", "TIME", "STEPS"])


def format_run(detail: dict) -> str:
    head = (f"run {detail['run_id']}  {detail['job']}  {detail['status']}  "
            f"partition={detail['partition'] or '-'}  {_fmt_s(detail['duration_s'])}")
    rows = [[s["step"], s["status"], str(s["attempts"]), _fmt_s(s["duration_s"]), s["error"] or ""]
            for s in detail["steps"]]
    body = _table(rows, ["STEP", "STATUS", "TRIES", "TIME", "ERROR"]) if rows else "no steps ran"
    run_error = detail["errors"].get("(run)")
    return "\n".join([head, body] + ([f"run error: {run_error}"] if run_error else []))


def format_status(st: dict) -> str:
    lines = [f"DAGSTER_HOME {st['dagster_home']}", f"events queued so far: {st['queued_events']}"]
    lines.append(f"active runs: {len(st['active_runs'])}")
    for run in st["active_runs"]:
        lines.append(f"  {run['run_id'][:8]} {run['job']} {run['status']} {run['partition'] or ''}")
    lines.append(f"recent failures: {len(st['recent_failures'])}")
    for run in st["recent_failures"]:
        for step, err in run["errors"].items():
            lines.append(f"  {run['run_id'][:8]} {run['partition'] or ''} {step}: {err}")
    return "\n".join(lines)


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"

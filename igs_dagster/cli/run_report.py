"""Runs and steps read from the Dagster instance, for `igs status|runs|run` when the
webserver of `igs dev` is not up (run_graphql reads the same through it, faster); both build
their dicts and text with run_format.

Errors are one line each: a failed step shows its `Failure` description (or the first line of
its error), never a traceback.
"""

from __future__ import annotations

import dagster as dg

from igs_dagster.cli.run_format import (
    ACTIVE,
    ACTIVE_LIMIT,
    FAILURES_LIMIT,
    INBOX_SENSOR,
    MAX_ERROR_CHARS,
    PARTITION_TAG,
    TICK_FRESH_S,
    format_run,
    format_runs,
    format_status,
    inbox_cursor,
    run_summary,
    status_view,
    step_summary,
    tick_problem,
)
from igs_dagster.core.errors import PermanentError
from igs_dagster.defs.failures import run_failure_reasons

__all__ = ["TICK_FRESH_S", "format_run", "format_runs", "format_status", "recent_runs",
           "run_detail", "status"]


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    return run_failure_reasons(instance, run_id, MAX_ERROR_CHARS)


def _run_summary(record) -> dict:
    run = record.dagster_run
    return run_summary(run.run_id, run.job_name, run.status.value, run.tags,
                       record.create_timestamp.timestamp(), record.start_time, record.end_time)


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
    return [step_summary(stat.step_key, stat.status.value if stat.status else None, stat.attempts,
                         stat.start_time, stat.end_time, errors.get(stat.step_key))
            for stat in instance.get_run_step_stats(run_id)]


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
            return inbox_cursor(getattr(state.instigator_data, "cursor", None))
    return None


def last_tick(instance: dg.DagsterInstance, name: str) -> tuple[float | None, str | None]:
    """(when the sensor last ticked, why that tick did no work if it failed or was skipped for
    invalid settings: run_format.tick_problem)."""
    for state in instance.all_instigator_state():
        if state.name == name:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            if not ticks:
                return None, None
            tick = ticks[0]
            error = tick.error.message if tick.error is not None else None
            return tick.timestamp, tick_problem(tick.status.value, tick.skip_reason, error)
    return None, None


def _not_fixed(instance: dg.DagsterInstance, failed: list) -> list:
    """The failed runs no later run of the same job and partition has fixed (a retry that
    succeeded), the newest FAILURES_LIMIT of them."""
    out = []
    for record in failed:
        run = record.dagster_run
        partition = run.tags.get(PARTITION_TAG)
        if partition and instance.get_run_records(filters=dg.RunsFilter(
                job_name=run.job_name, tags={PARTITION_TAG: partition},
                statuses=[dg.DagsterRunStatus.SUCCESS], created_after=record.create_timestamp), limit=1):
            continue
        out.append(record)
    return out[:FAILURES_LIMIT]


def status(instance: dg.DagsterInstance, queue, settings) -> dict:
    """Inbox backlog, daemon liveness, active runs and the last failures with their errors."""
    from igs_dagster.cli.daemon_probe import local_daemon_pids
    from igs_dagster.defs.video.checks import failed_checks

    statuses = [dg.DagsterRunStatus(s) for s in ACTIVE]
    active = instance.get_run_records(filters=dg.RunsFilter(statuses=statuses), limit=ACTIVE_LIMIT)
    failed = _not_fixed(instance, instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=FAILURES_LIMIT * 2
    ))
    beats = instance.get_daemon_heartbeats()
    tick, problem = last_tick(instance, INBOX_SENSOR)
    return status_view(
        settings, queue,
        pids=local_daemon_pids(settings.dagster_home),
        last_tick=tick, sensor_problem=problem,
        last_heartbeat=max((b.timestamp for b in beats.values()), default=None),
        cursor=_sensor_cursor(instance, INBOX_SENSOR),
        active=[_run_summary(r) for r in active],
        failures=[{**_run_summary(r), "errors": _step_errors(instance, r.dagster_run.run_id)}
                  for r in failed],
        checks=failed_checks(instance),
    )

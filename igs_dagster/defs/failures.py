"""What a failed step says, in one line: the one reader for the system log, the loop sensors
and `igs status`/`igs run` (our PermanentError's text, else the error's first line)."""

from __future__ import annotations

import dagster as dg

from igs_dagster.core.text import failure_reason, first_line


def step_failure_reason(event: dg.DagsterEvent, limit: int | None = None) -> str:
    """One line from a STEP_FAILURE event: the Failure description we raised, or the error."""
    data = event.step_failure_data if event.is_step_failure else None
    user = data.user_failure_data if data is not None else None
    error = data.error if data is not None else None
    return failure_reason(user.description if user is not None else None,
                          error.message if error is not None else None,
                          error.cls_name if error is not None else None, limit)


def run_failure_reasons(instance: dg.DagsterInstance, run_id: str,
                        limit: int | None = None) -> dict[str, str]:
    """step key -> reason of its last failed attempt; "(run)" -> the run's own failure message."""
    reasons: dict[str, str] = {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.is_step_failure:
            reasons[event.step_key or "?"] = step_failure_reason(event, limit)
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            reasons.setdefault("(run)", first_line(record.event_log_entry.message, limit)
                               or "run failed")
    return reasons

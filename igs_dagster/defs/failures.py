"""What a failed step says, in one line: the one reader for the system log, the loop sensors,
notifications and `igs status|videos|run|send --wait` (our PermanentError's text, else the
error that caused the last attempt to fail, with how many attempts were made), and the line
`igs send --wait` prints when a step is retried."""

from __future__ import annotations

import dagster as dg

from igs_dagster.core.text import failure_reason, first_line, with_attempts
from igs_dagster.defs.retries import MAX_ATTEMPTS_TAG


def _chain(error) -> list[tuple[str | None, str | None]]:
    """(message, class name) of a SerializableErrorInfo and each of its causes."""
    chain = []
    while error is not None and len(chain) < 10:
        chain.append((error.message, error.cls_name))
        error = error.cause
    return chain


def step_failure_reason(event: dg.DagsterEvent, limit: int | None = None) -> str:
    """One line from a STEP_FAILURE event: the Failure description we raised, or the error
    that caused it (below Dagster's "Exceeded max_retries" wrapper)."""
    data = event.step_failure_data if event.is_step_failure else None
    user = data.user_failure_data if data is not None else None
    return failure_reason(user.description if user is not None else None,
                          _chain(data.error if data is not None else None), limit)


def retry_cause(event: dg.DagsterEvent, limit: int | None = None) -> str:
    """Why a STEP_UP_FOR_RETRY event's attempt failed, in one line."""
    data = event.step_retry_data
    return failure_reason(None, _chain(data.error if data is not None else None), limit)


def run_failure_reasons(instance: dg.DagsterInstance, run_id: str,
                        limit: int | None = None) -> dict[str, str]:
    """step key -> reason of its last failed attempt, with the number of attempts when it was
    retried ("... (after 4 attempts)"); "(run)" -> the run's own failure message."""
    reasons: dict[str, str] = {}
    retried: dict[str, int] = {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE,
                         dg.DagsterEventType.STEP_UP_FOR_RETRY}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            retried[event.step_key or "?"] = retried.get(event.step_key or "?", 0) + 1
        elif event.is_step_failure:
            reasons[event.step_key or "?"] = step_failure_reason(event, limit)
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            reasons.setdefault("(run)", first_line(record.event_log_entry.message, limit)
                               or "run failed")
    return {step: with_attempts(reason, retried.get(step, 0) + 1) for step, reason in reasons.items()}


def max_attempts(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, int]:
    """step key -> attempts its retry policy allows (the `igs/max_attempts` op tag), for the
    steps that carry it."""
    snapshot_id = run.execution_plan_snapshot_id
    snapshot = instance.get_execution_plan_snapshot(snapshot_id) if snapshot_id else None
    found = {}
    for step in snapshot.steps if snapshot is not None else ():
        value = (step.tags or {}).get(MAX_ATTEMPTS_TAG)
        if value and value.isdigit():
            found[step.key] = int(value)
    return found


def retry_line(event: dg.DagsterEvent, attempt: int, allowed: int | None) -> str:
    """`attempt 2 of 4 in 10 s: <why attempt 1 failed>` for a STEP_UP_FOR_RETRY event;
    `attempt` is the number of the attempt that comes next."""
    data = event.step_retry_data
    wait = data.seconds_to_wait if data is not None else None
    # a step's own RetryRequested (a rate limit's pause) may allow more than its policy
    return (f"attempt {attempt}" + (f" of {allowed}" if allowed and attempt <= allowed else "")
            + (f" in {wait:.0f} s" if wait is not None else "") + f": {retry_cause(event, 300)}")

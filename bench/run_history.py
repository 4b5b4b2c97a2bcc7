"""Write a history of ingest-like runs into a Dagster instance, fast (figure 14, and the test
that both readers of `igs status|runs` agree): real run records and real run/step events
(start, success, failure with a `Failure` description or an error) through the instance's own
APIs, as a run worker would report them, without executing anything."""

from __future__ import annotations

import time

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, StepFailureData
from dagster._core.execution.plan.objects import StepSuccessData, UserFailureData
from dagster._core.utils import make_new_run_id
from dagster._utils.error import SerializableErrorInfo

JOB = "video_ingest"
STEPS = ("video_download", "video_archive", "transcript", "vault_note", "enriched_summary")


def _event(instance, run_id: str, kind: DagsterEventType, at: float, step: str | None = None,
           data=None, message: str | None = None) -> None:
    instance.report_dagster_event(
        DagsterEvent(kind.value, JOB, step_key=step, event_specific_data=data, message=message),
        run_id, timestamp=at)


def write_runs(instance: dg.DagsterInstance, count: int, failed_every: int = 10, start: float | None = None) -> list[str]:
    """`count` finished video_ingest runs, one a minute up to now; every `failed_every`-th
    fails: alternately a step raising `Failure` (a description) and a step error."""
    start = start or time.time() - 60 * count
    ids = []
    for i in range(count):
        run_id = make_new_run_id()
        at = start + 60 * i
        tags = {"dagster/partition": f"yt-{i:05d}", "dagster/sensor_name": "igs_events",
                "igs/trigger": "igs send" if i % 3 else "feed"}
        instance.add_run(dg.DagsterRun(job_name=JOB, run_id=run_id, tags=tags,
                                       status=dg.DagsterRunStatus.NOT_STARTED))
        _event(instance, run_id, DagsterEventType.RUN_START, at)
        failing = STEPS[i % len(STEPS)] if failed_every and i % failed_every == failed_every - 1 else None
        for step in STEPS:
            at += 1.5
            _event(instance, run_id, DagsterEventType.STEP_START, at, step)
            at += 2.0
            if step == failing:
                error = SerializableErrorInfo(f"ConnectionError: host down for {tags['dagster/partition']}\n"
                                              "second line", [], "ConnectionError")
                user = (UserFailureData(label="intentional-failure", description="archive host unreachable (retry later)")
                        if i % 2 else None)
                _event(instance, run_id, DagsterEventType.STEP_FAILURE, at, step,
                       StepFailureData(error=error, user_failure_data=user))
                break
            _event(instance, run_id, DagsterEventType.STEP_SUCCESS, at, step, StepSuccessData(2000.0))
        if failing:
            _event(instance, run_id, DagsterEventType.RUN_FAILURE, at + 0.5, data=JobFailureData(None),
                   message=f'Execution of run for "{JOB}" failed. Steps failed: [\'{failing}\'].')
        else:
            _event(instance, run_id, DagsterEventType.RUN_SUCCESS, at + 0.5)
        ids.append(run_id)
    return ids

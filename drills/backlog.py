"""Drill 1: a backlog. URLs sent while the daemon is stopped wait in the durable queue; when
the daemon starts, the sensor turns every one into exactly one run and every video is
materialized exactly once (runs, asset materializations and notes counted)."""

from __future__ import annotations

import time

import dagster as dg

from drills.common import (
    SAMPLE_MP4,
    DrillResult,
    all_finished,
    check_outcome,
    dry_keys,
    opened,
    overlaps,
    runs_by_key,
    tally,
    transcript_intervals,
    wait_until,
)


def run(ctx, result: DrillResult) -> None:
    deployment = ctx.shared()
    deployment.stop_daemon()
    n = ctx.backlog_size
    urls = [ctx.media.add(SAMPLE_MP4, f"backlog-{i:02d}.mp4") for i in range(n)]
    keys = dry_keys(deployment, *urls)
    result.check(len(set(keys)) == n, "one partition key per URL", f"{len(set(keys))} keys")

    deployment.igs("send", *urls, check=True, timeout=600)
    with opened(deployment) as instance:
        result.check(
            not any(instance.get_run_records(filters=dg.RunsFilter(job_name="video_ingest"))),
            "nothing runs while the daemon is stopped",
        )
        started = time.monotonic()
        deployment.start_daemon()
        wait_until(lambda: all_finished(instance, keys), 60 * n, f"{n} runs", deployment, every=3)
        drain = time.monotonic() - started
        result.details["drain_s"] = round(drain, 1)
        run_ids = [r.dagster_run.run_id for v in runs_by_key(instance, keys).values() for r in v]
        intervals = transcript_intervals(instance, run_ids)
        busy = sum(end - start for start, end, _ in intervals)
        result.details["gpu_busy_s"] = round(busy, 1)  # transcriptions run one at a time
        result.check(not overlaps(intervals), "transcriptions never concurrent")

    found = tally(result, deployment, keys)
    runs = found["runs"]
    result.check(
        all(len(runs[k]) == 1 for k in keys), "exactly one run per video",
        {k: len(v) for k, v in runs.items() if len(v) != 1},
    )
    result.check(
        all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for v in runs.values() for r in v),
        "every run succeeded",
    )
    result.check(
        all(r.dagster_run.tags.get("dagster/sensor_name") == "igs_events"
            for v in runs.values() for r in v),
        "every run came from the inbox sensor",
    )
    check_outcome(result, deployment, keys, found)

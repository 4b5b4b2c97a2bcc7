"""Drill 6: two transcriptions requested at the same moment from two launch paths.

One long talk is sent with `igs send` (inbox sensor → run queue), the other is backfilled
with `dagster job backfill` (backfill daemon → run queue), both at once. The `gpu` pool (limit 1,
stored in the instance) must keep the two transcript steps apart: their intervals, from the
event log, never overlap.
"""

from __future__ import annotations

import threading

import dagster as dg

from drills import common
from igs_dagster.core.inbox import EventQueue, Source


def run(ctx, result: common.DrillResult) -> None:
    deployment = ctx.shared()
    if deployment.daemon is None or deployment.daemon.poll() is not None:
        deployment.start_daemon()
    url_sensor = ctx.media.add(ctx.long_clip, "pool-sensor-talk.mp4")
    url_backfill = ctx.media.add(ctx.long_clip, "pool-backfill-talk.mp4")
    key_sensor, key_backfill = common.dry_keys(deployment, url_sensor, url_backfill)
    keys = [key_sensor, key_backfill]

    # the backfilled video is known to the deployment (source + partition), as after a UI add
    EventQueue(deployment.data / "queue.sqlite3").register_source(
        Source(key_backfill, "url", url_backfill, "web", None)
    )
    with common.opened(deployment) as instance:
        instance.add_dynamic_partitions("videos", [key_backfill])

    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def via_sensor() -> None:
        barrier.wait()
        outcomes["sensor"] = deployment.igs("send", url_sensor, timeout=300)

    def via_backfill() -> None:
        barrier.wait()
        outcomes["backfill"] = deployment.dagster(
            "job", "backfill", "-m", "igs_dagster.definitions", "-j", "video_ingest",
            "--partitions", key_backfill, "--noprompt", timeout=300,
        )

    threads = [threading.Thread(target=f, daemon=True) for f in (via_sensor, via_backfill)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(320)
    for path, proc in outcomes.items():
        result.check(proc.returncode == 0, f"{path} request accepted", proc.stderr[-300:])

    with common.opened(deployment) as instance:
        common.wait_until(lambda: common.all_finished(instance, keys), 900, "both runs", deployment, every=2)
        runs = common.runs_by_key(instance, keys)
        sensor_runs, backfill_runs = runs[key_sensor], runs[key_backfill]
        result.check(
            [r.dagster_run.tags.get("dagster/sensor_name") for r in sensor_runs] == ["igs_events"],
            "one run from the sensor",
        )
        result.check(
            len(backfill_runs) == 1 and backfill_runs[0].dagster_run.tags.get("dagster/backfill"),
            "one run from the backfill",
        )
        records = sensor_runs + backfill_runs
        result.check(all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records),
                     "both runs succeeded")
        run_ids = [r.dagster_run.run_id for r in records]
        intervals = common.transcript_intervals(instance, run_ids)
        t0 = min(r.start_time for r in records)
        result.details["transcript_intervals_s"] = [
            [round(s - t0, 1), round(e - t0, 1)] for s, e, _ in intervals
        ]
        spans = sorted((r.start_time, r.end_time) for r in records)
        result.details["runs_overlapped"] = spans[1][0] < spans[0][1]
        result.details["steps_waiting_for_gpu_slot"] = common.pool_waits(instance, run_ids)
        result.check(len(intervals) == 2, "two transcriptions ran", len(intervals))
        result.check(not common.overlaps(intervals), "transcriptions never concurrent", intervals)

    common.tally(result, deployment, keys)
    result.check(result.duplicates == 0 and result.lost == 0, "nothing lost, nothing twice")

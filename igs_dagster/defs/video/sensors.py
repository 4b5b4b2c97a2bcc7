"""Turn queued events into partitions and runs, exactly once (and a queued coding loop into
its first run: `defs/loop/sensors.start_requests`, so one read of the inbox serves both).
Evaluated by the `igs_events` sensor (defs/events.py) on every tick.

The cursor is the id of the last queued event handled; Dagster stores it with the tick's run
requests and partition additions, so a daemon restart re-reads at most the unfinished batch,
and the run keys (`ingest:<key>`) make a re-read request no second run. A retry (`igs retry`,
`igs send --force`) is an event the inbox numbers: its run key is `ingest:<key>:retry-<n>`.
"""

from dataclasses import dataclass, field

import dagster as dg

from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import Settings
from igs_dagster.defs.loop.resources import LoopSettings
from igs_dagster.defs.loop.sensors import START_EVENTS, start_requests
from igs_dagster.defs.video.jobs import max_runtime_tags, video_ingest_job
from igs_dagster.defs.video.partitions import video_partitions

BATCH = 1000
INGEST_EVENTS = ("video.download", "transcript.process")
SUMMARIZE_EVENTS = ("content.summarize",)


@dataclass
class InboxPart:
    """What one read of the inbox asks of the tick."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    partition_requests: list = field(default_factory=list)
    cursor: int = 0
    note: str = ""


def inbox_part(context: dg.SensorEvaluationContext, cursor: int, settings: Settings) -> InboxPart:
    """Queued events after `cursor` -> run requests (and new partitions). `settings`: the
    tick's (defs/events.py). An idle tick reads the inbox's SQLite file and nothing else."""
    queue = EventQueue(settings.queue_db)
    events = queue.after(cursor, limit=BATCH, names=INGEST_EVENTS + SUMMARIZE_EVENTS + START_EVENTS)
    if not events:
        return InboxPart(cursor=cursor, note=f"no new events after #{cursor}")
    starts = [e for e in events if e.event.name in START_EVENTS]
    requests: list[dg.RunRequest] = start_requests(
        starts, settings, LoopSettings(), context.log,
        queue.retry_numbers([e.id for e in starts]))  # `igs loop resume`: resume-<n>
    events_for_videos = [e for e in events if e.event.name not in START_EVENTS]
    if not events_for_videos:
        return InboxPart(requests, cursor=events[-1].id, note=f"{len(requests)} loop starts")

    retries = queue.retry_numbers([queued.id for queued in events])
    runtime = max_runtime_tags(settings)  # the settings of now, not of the job's import
    new_keys: list[str] = []
    # one ingest request per key and batch: the event with the highest retry number wins (an
    # `igs send` of a failed URL and the `igs retry` after it can land in one batch; the plain
    # one's run key already ran, so keeping the first would drop the retry)
    ingest: dict[str, tuple[int, dg.RunRequest]] = {}
    # one query, not one per event: `has_dynamic_partition` costs ~12 ms on SQLite, so a
    # 500-entry playlist took 6 s of the tick
    existing = set(context.instance.get_dynamic_partitions(video_partitions.name))
    for queued in events_for_videos:
        key = queued.key
        if key is None:
            continue
        if queued.event.name in SUMMARIZE_EVENTS:
            if key not in existing:
                context.log.warning(f"event #{queued.id}: no partition {key!r} to enrich; skipped")
                continue
            requests.append(dg.RunRequest(
                run_key=f"summarize:{queued.id}", partition_key=key, job_name=video_ingest_job.name,
                asset_selection=[dg.AssetKey("enriched_summary")],
                tags={"igs/event": str(queued.id), "igs/trigger": "content.summarize", **runtime},
            ))
            continue
        n = retries.get(queued.id) or 0
        if key in ingest and ingest[key][0] >= n:
            continue
        if key not in existing and key not in ingest:
            new_keys.append(key)
        ingest[key] = (n, dg.RunRequest(
            run_key=f"ingest:{key}:retry-{n}" if n else f"ingest:{key}", partition_key=key,
            job_name=video_ingest_job.name,
            tags={"igs/event": str(queued.id), "igs/trigger": queued.event.name, **runtime,
                  **({"igs/retry": str(n)} if n else {})},
        ))
    requests += [request for _, request in ingest.values()]

    note = f"{len(events)} events → {len(requests)} run requests, {len(new_keys)} new partitions"
    context.log.info(note)
    return InboxPart(
        requests, [video_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=events[-1].id, note=note,
    )

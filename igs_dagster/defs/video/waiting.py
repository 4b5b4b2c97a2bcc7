"""Live streams and premieres that had not ended when their download ran: queued again once
they are due (`video/waiting.py` records when), through the inbox like `igs retry`, so the
`igs_events` sensor gives the new run its own run key."""

import time

import dagster as dg

from igs_dagster.defs.resources import IgsSettings, invalid_settings_skip
from igs_dagster.defs.video.sensors import INGEST_EVENTS
from igs_dagster.video.waiting import WaitingVideos

# a premiere is due to the minute at best: looking every 5 minutes costs the daemon nothing
WAITING_TICK_S = 300


@dg.sensor(
    name="waiting_videos",
    minimum_interval_seconds=WAITING_TICK_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Live streams and premieres waited for -> queued again once they have ended.",
)
def waiting_videos(context: dg.SensorEvaluationContext, igs: IgsSettings):
    invalid = invalid_settings_skip(igs)  # one line per tick, not a traceback (defs/resources.py)
    if invalid:
        return dg.SkipReason(invalid)
    settings = igs.get()
    store = WaitingVideos(settings.waiting_db)
    due = store.due(time.time())
    if not due:
        return dg.SkipReason("no waiting video is due")
    queued = []
    for item in due:
        again = igs.queue().requeue(item.key, INGEST_EVENTS) if settings.queue_db.exists() else None
        store.remove(item.key)  # the new attempt records it again if it still has to wait
        if again is None:
            context.log.warning(f"waiting video {item.key} has no queued download to retry")
        else:
            queued.append(f"{item.key} (retry {again[1]})")
    return dg.SkipReason(f"queued again: {', '.join(queued) or 'none'}")

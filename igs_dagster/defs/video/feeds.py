"""Followed feeds (`igs follow`) -> new entries queued in the inbox, no command typed.

Each tick polls only the subscriptions that are due (each has its own interval), with
ETag/Last-Modified so an unchanged feed costs one 304. New entries go into the inbox like
`igs send` (one transaction per tick), and the `igs_events` sensor adds their partitions and
run requests in its next tick: one path from "a URL is known" to "a run", whoever sent it.
Restarts lose nothing: the per-feed cursor (entries seen) lives in the data folder, and keys
already in the inbox are never queued twice.
"""

import dagster as dg

from igs_dagster.core import netguard
from igs_dagster.core.inbox import EventQueue
from igs_dagster.defs.resources import IgsSettings, invalid_settings_skip
from igs_dagster.video.subscriptions import Subscriptions, poll_due

# A followed feed is polled every IGS_FEEDS__INTERVAL_S (default 15 min): the tick only decides
# which feeds are due, so it needn't run on every 5 s wake-up of the daemon (each tick costs the
# daemon a few writes to its own storage: bench figure 10).
FEED_TICK_S = 60


@dg.sensor(
    name="feed_sensor",
    minimum_interval_seconds=FEED_TICK_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Followed channels, playlists and podcasts -> new entries queued for ingest.",
)
def feed_sensor(context: dg.SensorEvaluationContext, igs: IgsSettings):
    invalid = invalid_settings_skip(igs)  # the settings, read once for this tick
    if invalid:
        return dg.SkipReason(invalid)
    settings = igs.get()
    store = Subscriptions(settings.feeds_db)
    # the settings' values, not loaders: the address fence (IGS_NETWORK__ALLOW; the poll's
    # threads run inside it) and yt-dlp's options for followed playlists
    with netguard.fence(netguard.policy_from_settings(settings)):
        results = poll_due(store, EventQueue(settings.queue_db), settings.data_dir,
                           max_per_hour=settings.feeds.max_per_hour, ytdlp_settings=settings.ytdlp)
    if not results:
        return dg.SkipReason("no followed feed is due")
    queued = sum(len(r.queued) for r in results)
    for r in results:
        if r.status == "error":
            context.log.warning(f"feed {r.feed.url}: {r.error}")
        elif r.queued:
            context.log.info(f"feed {r.feed.title or r.feed.url}: queued {', '.join(r.queued)}")
        if r.deferred:
            context.log.info(f"feed {r.feed.title or r.feed.url}: {r.deferred} entries wait for "
                             f"the hourly cap (IGS_FEEDS__MAX_PER_HOUR={settings.feeds.max_per_hour})")
    counts = {s: sum(1 for r in results if r.status == s) for s in ("new", "unchanged", "not-modified", "error")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return dg.SkipReason(f"polled {len(results)} feeds ({summary}): {queued} entries queued")

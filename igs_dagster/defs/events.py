"""`igs_events`: the one sensor someone waits on, on every wake-up of the sensor daemon.

Each tick, two parts:
1. the inbox: queued URLs, files, transcripts and loop starts -> partitions and runs
   (defs/video/sensors.py);
2. finished runs -> the coding loop's next run or its end, system-log lines, notifications
   (defs/outcomes.py; a part of a run's handling that fails is tried again on later ticks).
The run-worker watchdog and the stranded pool slots have a sensor of their own, `igs_watchdog`
(defs/system/watchdog_sensor.py), every 30 s.

Each part runs on its own (`sensor_instance.Parts`): one that raises does not stop the other.
Its failure is logged as an error in the tick's log and leads the tick's skip reason, both shown
in the UI's tick history, and its cursor stays where it was, so the next tick tries it again.

Why one sensor for the inbox and the outcomes and not one per concern (Dagster's
`run_status_sensor` / `run_failure_sensor`, issue 25): whatever a tick does, the daemon pays for
it in writes to its own storage (the tick row, the sensor's state, the purge of old skipped
ticks), about 50 ms of CPU on SQLite, and a run-status sensor's code-server side re-creates the
instance on every tick (~0.1 s). At rest, ticks are nearly all that an always-on `igs dev`
costs (bench figure 10), and the inbox and the outcomes both tick on every wake-up (`igs send`
and the loop's chain wait on them). Measured here, `igs dev` at rest, CPU-seconds of the process
tree over 90 s after 60 s of warm-up (figure 10's method), all on one machine:
- this sensor with the watchdog inside: 2.26 CPU-s (daemon 1.69, code server 0.41), 2.5 %;
- this sensor plus `igs_watchdog` every 30 s (what runs now): 2.22 CPU-s (daemon 1.65, code
  server 0.41), 2.5 %: the split costs nothing measurable and a failing watchdog shows as a
  failed tick of its own;
- seven run-status sensors (the loop's hand-off, failure and cancel every 4 s; system log and
  notifications on success and failure every 30 s) plus the inbox and the watchdog: 7.1 CPU-s
  (daemon 3.38, code server 3.57), 7.9 %, over the 3 % goal; all seven every 30 s (a loop's
  fallback hand-off and every notification up to 30 s late): 3.73 CPU-s, 4.1 %.
An idle tick reads the inbox's SQLite file and the event index's newest record id, nothing else.

Settings: each tick reads them once, through the `igs` resource the steps get too
(defs/resources.py), and hands that value to both parts. This sensor builds the resource itself
rather than taking it as a parameter: Dagster builds a sensor's resources with
`context.instance`, which the code server opens afresh for every tick; measured here, a sensor
with one resource parameter cost 38 ms of CPU per tick against 0.1 ms without (evaluated with an
instance reference, as the code server does), ~0.1 s per tick in `igs dev`'s code server (its
first queries check the storage's schema): 1-2.5 % of a core at this sensor's 4-s interval,
against figure 10's 3 % goal. `feed_sensor` (60 s) and `waiting_videos` (300 s) take it as a
parameter: figure 10 measured the code server at 0.35 CPU-s per minute at rest with them,
0.25 without.

The cursor is one JSON object: the inbox's last event id and the outcomes' record ids per
outcome (with the parts to try again). A deployment that ran the separate sensors before
carries on from their cursors (`video_inbox_sensor`, `run_outcomes`), so nothing is re-read or
skipped.
"""

from __future__ import annotations

import json

import dagster as dg

from igs_dagster.dagster_compat import SENSOR_DAEMON_WAKE_S
from igs_dagster.defs.loop.jobs import LOOP_JOBS
from igs_dagster.defs.outcomes import outcomes_part
from igs_dagster.defs.resources import IgsSettings, invalid_settings_skip
from igs_dagster.defs.sensor_instance import LazyLog, Parts, sensor_instance
from igs_dagster.defs.video.jobs import video_ingest_job
from igs_dagster.defs.video.sensors import inbox_part

NAME = "igs_events"
# The sensor daemon wakes every 5 s (dagster_compat entry 5) and skips a sensor whose last tick
# began less than its interval ago: at exactly 5 s a tick that began a few ms late is skipped
# once, so `igs send` waited up to 10 s (bench figure 5). Just under the daemon's wake-up means a
# tick on every wake-up.
INTERVAL_S = SENSOR_DAEMON_WAKE_S - 1
LEGACY_INBOX = "video_inbox_sensor"
LEGACY_OUTCOMES = "run_outcomes"


def _legacy_cursors(instance: dg.DagsterInstance) -> dict[str, str]:
    """The cursors of the sensors this one replaced, by name (empty on a new deployment)."""
    found = {}
    for state in instance.all_instigator_state():  # by name: no schedule has these names
        cursor = getattr(state.instigator_data, "cursor", None)
        if state.name in (LEGACY_INBOX, LEGACY_OUTCOMES) and cursor:
            found[state.name] = cursor
    return found


def read_cursor(raw: str | None, instance: dg.DagsterInstance) -> dict:
    if raw:
        return json.loads(raw)
    legacy = _legacy_cursors(instance)
    inbox = int(legacy.get(LEGACY_INBOX) or 0)
    outcomes = json.loads(legacy[LEGACY_OUTCOMES]) if LEGACY_OUTCOMES in legacy else None
    return {"inbox": inbox, "outcomes": outcomes}


@dg.sensor(
    name=NAME,
    jobs=[video_ingest_job, *LOOP_JOBS],
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Queued URLs, files and loop starts → runs; finished runs → the loop's next run, "
                "system-log lines, notifications. A part that fails is logged and tried again "
                "next tick; the other goes on.",
)
def igs_events(context: dg.SensorEvaluationContext):
    igs = IgsSettings()  # the settings resource (no resource parameter: see the docstring)
    invalid = invalid_settings_skip(igs)  # the settings, read once for this tick
    if invalid:  # the cursor stays: the next good tick does this tick's work
        return dg.SensorResult(skip_reason=invalid, cursor=context.cursor)
    settings = igs.get()
    instance = sensor_instance(context)  # opened once per code server, not per tick
    log = LazyLog(context)
    parts = Parts(log)
    cursor = read_cursor(context.cursor, instance)
    inbox_at = int(cursor.get("inbox") or 0)
    inbox = parts.run("inbox", lambda: inbox_part(context, inbox_at, settings), None)
    outcomes = parts.run("outcomes", lambda: outcomes_part(
        instance, settings, cursor.get("outcomes"), log, context.repository_def), None)
    requests = (inbox.run_requests if inbox else []) + (outcomes[0] if outcomes else [])
    partitions = inbox.partition_requests if inbox else []
    new_cursor = json.dumps({"inbox": inbox.cursor if inbox else inbox_at,
                             "outcomes": outcomes[1] if outcomes else cursor.get("outcomes")})
    if not requests and not partitions:
        notes = [*parts.failed, inbox.note if inbox else "", outcomes[2] if outcomes else ""]
        return dg.SensorResult(skip_reason="; ".join(n for n in notes if n), cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions,
                           cursor=new_cursor)

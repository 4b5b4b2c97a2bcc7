"""`igs_events`: the one sensor someone waits on, on every wake-up of the sensor daemon.

Each tick, in this order:
1. the inbox: queued URLs, files, transcripts and loop starts -> partitions and runs
   (defs/video/sensors.py);
2. finished runs -> the coding loop's next run or its end, system-log lines, notifications
   (defs/outcomes.py);
3. every WATCHDOG_INTERVAL_S, the run-worker watchdog: STARTED runs whose worker died are
   failed so run retries take them up (defs/system/watchdog.py); and a step waiting beside a
   free pool slot that it missed gets it (defs/system/pool_slots.py).

Why one sensor and not three: whatever a tick does, the daemon pays for it in writes to its own
storage (the tick row, the sensor's state, the purge of old skipped ticks), about 60 ms of CPU
on SQLite. At rest, ticks were nearly all that an always-on `igs dev` cost (bench figure 10), and
the inbox and the outcomes must both tick on every wake-up (`igs send` and the loop's chain
wait on them). An idle tick reads the inbox's SQLite file and the event index's newest record
id, nothing else.

The cursor is one JSON object: the inbox's last event id, the outcomes' record ids per outcome,
and when the watchdog last looked. A deployment that ran the separate sensors before carries on
from their cursors (`video_inbox_sensor`, `run_outcomes`), so nothing is re-read or skipped.
"""

from __future__ import annotations

import json
import time

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType

from igs_dagster.defs.loop.jobs import LOOP_JOBS
from igs_dagster.defs.outcomes import outcomes_part
from igs_dagster.defs.sensor_instance import LazyLog, sensor_instance
from igs_dagster.defs.system.pool_slots import assign_stranded
from igs_dagster.defs.system.watchdog import WATCHDOG_INTERVAL_S, watchdog_part
from igs_dagster.defs.video.jobs import video_ingest_job
from igs_dagster.defs.video.sensors import inbox_part

NAME = "igs_events"
# The sensor daemon wakes every 5 s (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME) and skips a
# sensor whose last tick began less than its interval ago: at exactly 5 s a tick that began a
# few ms late is skipped once, so `igs send` waited up to 10 s (bench figure 5). Just under the
# daemon's wake-up means a tick on every wake-up.
INTERVAL_S = 4
LEGACY_INBOX = "video_inbox_sensor"
LEGACY_OUTCOMES = "run_outcomes"


def _legacy_cursors(instance: dg.DagsterInstance) -> dict[str, str]:
    """The cursors of the sensors this one replaced, by name (empty on a new deployment)."""
    found = {}
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
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
    return {"inbox": inbox, "outcomes": outcomes, "watchdog": 0.0}


@dg.sensor(
    name=NAME,
    jobs=[video_ingest_job, *LOOP_JOBS],
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Queued URLs, files and loop starts → runs; finished runs → the loop's next run, "
                "system-log lines, notifications; dead run workers → failed runs (every "
                f"{WATCHDOG_INTERVAL_S} s).",
)
def igs_events(context: dg.SensorEvaluationContext):
    instance = sensor_instance(context)  # opened once per code server, not per tick
    log = LazyLog(context)
    cursor = read_cursor(context.cursor, instance)
    inbox = inbox_part(context, int(cursor.get("inbox") or 0))
    outcome_requests, outcomes, outcome_note = outcomes_part(instance, cursor.get("outcomes"), log,
                                                               context.repository_def)
    notes = [inbox.note, outcome_note]
    watched = float(cursor.get("watchdog") or 0.0)
    if time.time() - watched >= WATCHDOG_INTERVAL_S:
        notes.append(watchdog_part(instance, log))
        notes.append(assign_stranded(instance, log))
        watched = time.time()
    new_cursor = json.dumps({"inbox": inbox.cursor, "outcomes": outcomes, "watchdog": watched})
    requests = inbox.run_requests + outcome_requests
    if not requests and not inbox.partition_requests:
        return dg.SensorResult(skip_reason="; ".join(notes), cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=inbox.partition_requests,
                           cursor=new_cursor)

"""`igs_watchdog`: every WATCHDOG_INTERVAL_S, the run-worker watchdog (STARTED runs whose worker
died are failed so run retries take them up: defs/system/watchdog.py) and the steps waiting
beside a free pool slot they missed (a workaround of a race in Dagster's slot hand-off:
dagster_compat.assign_stranded_pool_slots).

A sensor of its own rather than a part of `igs_events` (defs/events.py): a watchdog that raises
must not stop the inbox or the loop, and here it fails alone, as a failed tick in the UI's tick
history with its error, after the other part has run. At a 30 s interval the extra sensor costs
nothing measurable at rest (figures in defs/events.py).
"""

from __future__ import annotations

import dagster as dg

from igs_dagster.dagster_compat import assign_stranded_pool_slots
from igs_dagster.defs.sensor_instance import LazyLog, Parts, sensor_instance
from igs_dagster.defs.system.watchdog import WATCHDOG_INTERVAL_S, watchdog_part

NAME = "igs_watchdog"


class PartsFailed(Exception):
    """Some part of the tick failed (the others ran): the tick is shown failed, with why."""


@dg.sensor(
    name=NAME,
    minimum_interval_seconds=WATCHDOG_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Every {WATCHDOG_INTERVAL_S} s: runs whose worker process died → failed (run "
                "retries take them up); steps that missed a free pool slot → given it.",
)
def igs_watchdog(context: dg.SensorEvaluationContext):
    instance = sensor_instance(context)
    log = LazyLog(context)
    parts = Parts(log)
    notes = [parts.run("watchdog", lambda: watchdog_part(instance, log), ""),
             parts.run("pool slots", lambda: assign_stranded_pool_slots(instance, log), "")]
    if parts.failed:
        raise PartsFailed("; ".join(parts.failed + [n for n in notes if n]))
    return dg.SkipReason("; ".join(notes))

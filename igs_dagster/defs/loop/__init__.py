"""The autonomous coding loop on Dagster: role ops, three jobs, the sensors that chain them.

Plain logic lives in `igs_dagster.loop` (roles, record, planner, ...); this package only
wires it: see jobs.py for the run shapes and sensors.py for how runs follow each other.
"""

import dagster as dg

from igs_dagster.defs.loop import jobs, sensors
from igs_dagster.defs.loop.resources import LoopSettings

defs = dg.Definitions(
    jobs=list(jobs.LOOP_JOBS),
    sensors=[
        sensors.loop_start_sensor,
        sensors.loop_chain_sensor,
        sensors.loop_failure_sensor,
        sensors.loop_canceled_sensor,
    ],
    resources={"igs_loop": LoopSettings()},
)

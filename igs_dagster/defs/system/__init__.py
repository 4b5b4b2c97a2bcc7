"""System-wide sensors: the system log (one line per stage of every run) and the run-worker
watchdog (runs whose worker process died are failed, so run retries pick them up)."""

import dagster as dg

from igs_dagster.defs.system import log_sensors, watchdog

defs = dg.Definitions(sensors=[
    log_sensors.system_log_successes,
    log_sensors.system_log_failures,
    watchdog.run_worker_watchdog,
])

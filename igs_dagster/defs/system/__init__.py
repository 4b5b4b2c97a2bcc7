"""System-wide sensors: the system log (one line per stage of every run)."""

import dagster as dg

from igs_dagster.defs.system import log_sensors

defs = dg.Definitions(sensors=[log_sensors.system_log_successes, log_sensors.system_log_failures])

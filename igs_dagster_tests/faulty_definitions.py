"""This project's code location with its run-worker watchdog broken on purpose, for a daemon
in test_sensor_parts.py (a part that raises must fail alone). Wherever the sensor that runs the
watchdog imported it, it is replaced by one that raises."""

import importlib

from igs_dagster.definitions import defs


def _broken(instance, log):
    raise RuntimeError("watchdog broken on purpose")


for name in ("igs_dagster.defs.events", "igs_dagster.defs.system.watchdog_sensor"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    if hasattr(module, "watchdog_part"):
        module.watchdog_part = _broken

__all__ = ["defs"]

"""Resources shared by every pipeline."""

from __future__ import annotations

import dagster as dg

from igs_dagster.core.errors import SettingsError
from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import Settings, load_settings
from igs_dagster.core.settings_sources import SENSOR_SETTINGS_INVALID


class IgsSettings(dg.ConfigurableResource):
    """Validated project settings, read where the step runs (IGS_* env / config file), so the
    daemon, the run workers and the CLI all see one source of truth."""

    def get(self) -> Settings:
        return load_settings()

    def queue(self) -> EventQueue:
        return EventQueue(self.get().queue_db)


def invalid_settings_skip() -> str | None:
    """A sensor's skip reason while the settings are invalid (e.g. a config file broken while
    the service runs), else None: one line per tick in the UI's tick history, the daemon's log,
    `igs status` and `igs send --wait`, instead of a traceback; the sensor keeps its cursor, so
    the first good tick does the work."""
    try:
        load_settings()
    except SettingsError as err:
        return f"{SENSOR_SETTINGS_INVALID}: {err}"
    return None


defs = dg.Definitions(resources={"igs": IgsSettings()})

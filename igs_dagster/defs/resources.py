"""Resources shared by every pipeline."""

from __future__ import annotations

import dagster as dg

from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import Settings, load_settings


class IgsSettings(dg.ConfigurableResource):
    """Validated project settings, read where the step runs (IGS_* env / config file), so the
    daemon, the run workers and the CLI all see one source of truth."""

    def get(self) -> Settings:
        return load_settings()

    def queue(self) -> EventQueue:
        return EventQueue(self.get().queue_db)


defs = dg.Definitions(resources={"igs": IgsSettings()})

"""One DagsterInstance per code-server process for the sensors, instead of one per tick; and
the parts of a sensor's tick, each run on its own (`Parts`).

In the code server, `context.instance` of a sensor (and any sensor with Dagster resources,
which builds them with the instance) re-creates the instance on every tick: on SQLite that
runs an alembic revision check loading every migration script, ~0.1 s of CPU per tick and
most of what an idle `igs dev` cost (bench figure 10). The instance the daemon describes
(`context.instance_ref`) never changes while the code server lives, so it is opened once here
and kept; its storages open a connection per query (SQLite) or hold a thread-safe pool
(Postgres), so ticks in several threads may share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from igs_dagster.core.text import one_line

T = TypeVar("T")

_lock = threading.Lock()
_instances: dict[str, dg.DagsterInstance] = {}


def sensor_instance(context: dg.SensorEvaluationContext) -> dg.DagsterInstance:
    """The instance a sensor tick works on, opened once per process and instance reference."""
    ref = context.instance_ref
    if ref is None:  # built by a test with an instance (build_sensor_context(instance=...))
        return context.instance
    key = dg.serialize_value(ref)
    with _lock:
        instance = _instances.get(key)
        if instance is None:
            instance = _instances[key] = dg.DagsterInstance.from_ref(ref)
    return instance


class LazyLog:
    """`context.log` opened on first use: reading `context.log` in the code server builds
    `context.instance` (the per-tick re-open above), so an idle tick must never touch it."""

    def __init__(self, context: dg.SensorEvaluationContext):
        self._context = context

    def __getattr__(self, name: str):
        return getattr(self._context.log, name)


class Parts:
    """The parts of one sensor tick, each on its own: a part that raises is logged as an error
    (the tick's log, under the tick in the UI's history) and listed in `failed`; the others
    carry on, so a broken watchdog never stops the inbox or the loop."""

    def __init__(self, log):
        self._log = log
        self.failed: list[str] = []

    def run(self, name: str, part: Callable[[], T], fallback: T) -> T:
        try:
            return part()
        except Exception as err:  # noqa: BLE001 - one part failing must not stop the others
            line = f"{name} FAILED: {type(err).__name__}: {one_line(str(err), 300)}"
            self.failed.append(line)
            self._log.error(f"{line} (the other parts went on; tried again next tick)")
            return fallback

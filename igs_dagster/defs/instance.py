"""Prepare the Dagster instance the project runs on: a persistent DAGSTER_HOME with our
dagster.yaml, and the concurrency limits stored in the instance database.

Pool limits live in the instance's database, not in code, so every start-up path
(`igs dev`, `igs demo`, the CLI, the sensors) calls `ensure_pool_limits` instead of relying
on a manual `dagster instance concurrency set gpu 1`; it only fills in a limit the instance
lacks, so a value the operator stored stays.
"""

from __future__ import annotations

import os
from pathlib import Path

from igs_dagster.core.fsutil import atomic_write_text, private_dir
from igs_dagster.core.settings import Settings

MANAGED_MARKER = "# managed by igs: rewritten at start-up from the project's dagster.yaml"
GPU_POOL = "gpu"
POOL_LIMITS = {GPU_POOL: 1}
PROJECT_TAG = "igs/project"

# The template lives in the package (a checkout and a wheel read the same file). Not at the
# project root: `dagster dev`/`dg dev` there would warn that it "will not be used".
TEMPLATE = Path(__file__).parents[1] / "dagster.yaml"


def instance_yaml(settings: Settings) -> str:
    """The dagster.yaml for this deployment: the project's template (+ storage when set)."""
    text = TEMPLATE.read_text()
    storage = settings.storage_yaml()
    text = f"{MANAGED_MARKER}\n{text}"
    return text if not storage else text.rstrip() + "\n\n" + storage


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME (default `<data>/dagster_home`), write dagster.yaml, export it.

    A dagster.yaml without our marker line belongs to the operator (a container mount, a
    hand-tuned file) and is left alone.
    """
    home = settings.dagster_home
    private_dir(home)  # 0700 (and the data folder above it, when it is made here)
    wanted = instance_yaml(settings)
    target = home / "dagster.yaml"
    current = target.read_text() if target.is_file() else None
    if current is None or (current.startswith(MANAGED_MARKER) and current != wanted):
        atomic_write_text(target, wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def ensure_pool_limits(instance) -> dict[str, int]:
    """Store our pool limits where the instance has none yet; return the ones set.

    A stored limit is the operator's (`gpu = 2` set in the UI or with `dagster instance
    concurrency set` for a bigger GPU) and is never overwritten, by start-up or by a sensor.
    """
    storage = instance.event_log_storage
    stored = {limit.name for limit in storage.get_pool_limits()}
    applied = {pool: limit for pool, limit in POOL_LIMITS.items() if pool not in stored}
    for pool, limit in applied.items():
        storage.set_concurrency_slots(pool, limit)
    return applied


def open_instance(settings: Settings):
    """Prepared, persistent DagsterInstance for CLI commands."""
    import dagster as dg

    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    ensure_pool_limits(instance)
    return instance

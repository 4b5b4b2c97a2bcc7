"""Prepare the Dagster instance the project runs on: a persistent DAGSTER_HOME whose
dagster.yaml is the project's (the top-level dagster.yaml, plus PostgreSQL storage when the
settings ask for it).

Pool limits need no start-up code: `concurrency: pools: default_limit` in dagster.yaml is
stored by Dagster for a pool the first time a step claims it, on every launch path, and a limit
the operator set for a pool (the UI, `dagster instance concurrency set gpu 2`) is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from igs_dagster.core.fsutil import atomic_write_text, private_dir
from igs_dagster.core.settings import Settings

MANAGED_MARKER = "# managed by igs: rewritten at start-up from the project's dagster.yaml"
GPU_POOL = "gpu"  # transcription, one step at a time: dagster.yaml's pools default_limit
PROJECT_TAG = "igs/project"

# The project's instance configuration: dagster.yaml at the top of the checkout, beside
# workspace.yaml; a wheel carries it inside the package (pyproject.toml's force-include).
_CHECKOUT = Path(__file__).parents[2] / "dagster.yaml"
TEMPLATE = _CHECKOUT if _CHECKOUT.is_file() else Path(__file__).parents[1] / "dagster.yaml"


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


def open_instance(settings: Settings):
    """Prepared, persistent DagsterInstance for CLI commands."""
    import dagster as dg

    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()

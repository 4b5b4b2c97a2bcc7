"""The code location: every module under `igs_dagster/defs/` (one folder per pipeline), loaded by
Dagster's defs-folder loader, so a new asset, job or sensor file is picked up without a list."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)

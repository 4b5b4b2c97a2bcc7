"""The code location: every module under `igs_dagster/defs/` (one folder per pipeline), loaded by
Dagster's defs-folder loader, so a new asset, job or sensor file is picked up without a list."""

import warnings
from pathlib import Path

import dagster as dg

with warnings.catch_warnings():
    # The loader re-creates each sensor to add its source file to the metadata and passes the
    # empty `owners` list through a beta-annotated parameter: one BetaWarning per sensor at every
    # start-up, though we set no owners (Dagster 1.13.27). Resolving the repository does it too.
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message="Parameter `owners`")
    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    defs.get_repository_def()  # resolved here (and cached), where the filter holds

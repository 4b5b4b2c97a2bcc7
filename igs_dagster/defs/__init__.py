"""Dagster wiring only, one folder per pipeline (video/, loop/, system/); the plain logic lives in
igs_dagster.video, igs_dagster.loop and igs_dagster.core. Every module here is loaded by
`dg.load_from_defs_folder` (definitions.py): a new asset, job or sensor file needs no list."""

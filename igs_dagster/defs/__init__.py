"""Dagster wiring, one folder per pipeline. Plain logic lives in igs_dagster's other modules."""

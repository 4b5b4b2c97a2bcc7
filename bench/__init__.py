"""Benchmarks of the igs-dagster pipelines: `python -m bench --help` (see bench/README.md)."""

"""The `igs` command: one module per command group, `app` builds the parser and runs it."""

from igs_dagster.cli.app import main

__all__ = ["main"]

"""The system log side of Dagster: hooks that write one line per pipeline stage."""

import dagster as dg

defs = dg.Definitions()

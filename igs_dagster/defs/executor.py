"""Ad-hoc runs (UI "Materialize", `dagster asset materialize`) run their steps in one process:
one process start and one Whisper model load per run (jobs set the same executor)."""

import dagster as dg

defs = dg.Definitions(executor=dg.in_process_executor)

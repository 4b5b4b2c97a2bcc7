"""The code location: every pipeline's definitions merged (see defs/<domain>/)."""

import dagster as dg

from igs_dagster.defs import loop, resources, system, video

defs = dg.Definitions.merge(
    resources.defs,
    video.defs,
    system.defs,
    loop.defs,
    # ad-hoc runs (UI "Materialize", `dagster asset materialize`) also run in one process
    dg.Definitions(executor=dg.in_process_executor),
)

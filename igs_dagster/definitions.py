"""The code location: every pipeline's definitions merged (see defs/<domain>/)."""

import dagster as dg

from igs_dagster.defs import resources, system, video

defs = dg.Definitions.merge(resources.defs, video.defs, system.defs)

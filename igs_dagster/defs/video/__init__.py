"""Video ingest: URL or file → download → archive → transcript → vault note → enrichment."""

import dagster as dg

from igs_dagster.defs.video import assets, jobs, sensors

defs = dg.Definitions(
    assets=[
        assets.video_download,
        assets.video_archive,
        assets.transcript,
        assets.vault_note,
        assets.enriched_summary,
    ],
    jobs=[jobs.video_ingest_job],
    sensors=[sensors.video_inbox_sensor],
)

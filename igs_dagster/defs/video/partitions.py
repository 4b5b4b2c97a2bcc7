"""One partition per video (YouTube ID) or other source (stable, file-name-safe key)."""

import dagster as dg

video_partitions = dg.DynamicPartitionsDefinition(name="videos")

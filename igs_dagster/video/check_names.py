"""The video asset checks by (asset, check name): one list for the Dagster wiring
(defs/video/checks.py) and for `igs status`, which reads them over the webserver without
importing Dagster."""

from __future__ import annotations

CHECKS = (
    ("vault_note", "vault_note_check"), ("enriched_summary", "enriched_summary_check"),
    ("transcript", "transcript_check"), ("video_archive", "video_archive_check"),
)
BLOCKING = frozenset({"vault_note_check"})  # a failed evaluation stops the downstream assets

"""The video pipeline's resources: the Whisper model and the archive target, each a group of the
settings as typed config (how they are built: defs/resources.py)."""

from __future__ import annotations

import dagster as dg

from igs_dagster.defs.resources import settings_resource

WhisperModel = settings_resource(
    "WhisperModel",
    "Local Whisper: backend, model (`bundled` tiny.en, `base`, a model folder or name), device, "
    "decoding, language, and where the transcript comes from (Whisper or the creator's captions).",
    "transcriber", ("backend", "model", "device", "compute_type", "beam_size", "vad_filter",
                    "language", "task", "source"))

ArchiveTarget = settings_resource(
    "ArchiveTarget",
    "Where the media is archived: a NAS over SFTP (host keys always verified) when `sftp_host` "
    "is set, else the local folder (default `<data>/archive`).",
    "archive", ("local_dir", "sftp_host", "sftp_port", "sftp_user", "sftp_key",
                "sftp_known_hosts", "sftp_root", "retries"))

defs = dg.Definitions(resources={"whisper": WhisperModel(), "archive_target": ArchiveTarget()})

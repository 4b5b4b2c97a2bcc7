"""Subtitles beside the archived media, and screenshots in the note (after enrichment, so they
sit next to its key points). Both are archived with the media in the same folder."""

from datetime import date
from pathlib import Path

import dagster as dg

from igs_dagster.defs.resources import IgsSettings, Vault
from igs_dagster.defs.retries import NAS_RETRY, permanent_failures, retrying
from igs_dagster.defs.video.assets import COMMON, _timestamp_link
from igs_dagster.defs.video.claims import step_claims
from igs_dagster.defs.video.resources import ArchiveTarget
from igs_dagster.defs.video.vault_guard import checked_vault
from igs_dagster.video import archive, noteblocks, screenshots, subtitles
from igs_dagster.video.transcript import load_transcript


@dg.asset(**COMMON, **retrying(NAS_RETRY), kinds={"ffmpeg"}, deps=[
    "video_download", "video_archive", "transcript", "vault_note", "enriched_summary",
], description=(
    "SRT + WebVTT subtitles (`<name>.<lang>.srt`) from the transcript and, for videos, "
    "screenshots at key points and scene changes embedded in the note; both archived with "
    "the media (local folder or NAS)."
))
def video_extras(context: dg.AssetExecutionContext, igs: IgsSettings, vault: Vault,
                 archive_target: ArchiveTarget) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, vault, archive_target)
    video_download, video_archive, transcript, vault_note = handed.load_each(
        "video_download", "video_archive", "transcript", "vault_note")
    media = Path(video_download["video_path"]) if video_download.get("video_path") else None
    with permanent_failures():
        checked_vault(settings)
        data = load_transcript(Path(transcript["path"]))
        segments = data.get("segments") or []
        files: list[Path] = []
        if media is not None and any(isinstance(s.get("start"), int | float) for s in segments):
            files += subtitles.write_subtitles(media, segments, data.get("language"))
        shots: list[screenshots.Shot] = []
        note_path = Path(vault_note["note_path"])
        if media is not None and screenshots.has_video(media):
            points = screenshots.key_points(note_path.read_text(encoding="utf-8"))
            duration = float(transcript.get("duration") or video_download.get("duration") or 0)
            shots = screenshots.take_screenshots(
                media, settings.vault_dir, vault_note["slug"], duration, points)
        link = _timestamp_link(video_download)
        noteblocks.update_note_block(
            note_path, "screenshots", screenshots.render_block(shots, settings.vault_dir, link))
        files += [s.path for s in shots]
        archived = {}
        if files:
            year = int((video_download.get("upload_date") or date.today().isoformat())[:4])
            archived = archive.make_archive(settings).archive(
                files, year, video_download["slug"]).to_json()
    handed.save("video_extras", {"files": [str(f) for f in files],
                                 "screenshots": [str(s.path) for s in shots],
                                 "archive": archived.get("files", [])})
    return dg.MaterializeResult(metadata={
        "subtitles": len([f for f in files if f.suffix in (".srt", ".vtt")]),
        "screenshots": len(shots),
        "archived_uploaded": int(archived.get("uploaded", 0)),
        "location": archived.get("location", video_archive.get("location") or ""),
    })

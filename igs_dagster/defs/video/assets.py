"""The video assets. Each is one step a user can (re)materialize per partition in the UI.

Claim check: the media, the transcript JSON and the note live in the data folder and the vault;
each asset hands the next ones a small dict of their paths and facts as a file beside the media
(defs/video/claims.py), names the assets it needs in `deps=`, and reports what it did with
`MaterializeResult`. The settings come from the resources (defs/resources.py).
"""


from datetime import date
from pathlib import Path

import dagster as dg

from igs_dagster.core import netguard
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inbox import EventQueue, Source
from igs_dagster.core.inert import clean_info
from igs_dagster.core.redact import redact
from igs_dagster.core.settings import Settings
from igs_dagster.defs.instance import GPU_POOL
from igs_dagster.defs.resources import AgentRunner, IgsSettings, Vault
from igs_dagster.defs.retries import NAS_RETRY, RETRY, ProgressLog, permanent_failures, retrying
from igs_dagster.defs.video.claims import claims, step_claims
from igs_dagster.defs.video.partitions import video_partitions
from igs_dagster.defs.video.resources import ArchiveTarget, WhisperModel
from igs_dagster.defs.video.ui_meta import model_name, obsidian_url
from igs_dagster.defs.video.vault_guard import checked_vault
from igs_dagster.video import archive, captions, download, enrich, feeds, notes, transcribe
from igs_dagster.video.daily import link_daily
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.ids import is_partition_key, parse_source, timestamp_url
from igs_dagster.video.local_media import describe_text, import_media_file
from igs_dagster.video.note_slugs import note_slug
from igs_dagster.video.transcript import TranscriptInfo, load_transcript, text_to_transcript
from igs_dagster.video.waiting import WaitingVideos
from igs_dagster.video.whisper_backends import describe_plan

COMMON = dict(partitions_def=video_partitions, group_name="video")
# a rate-limited download is retried after the site's pause (5, 10, 20, 40, 60, 60 min by
# default): these retries are asked by the step (dg.RetryRequested), not the RetryPolicy's
RATE_LIMIT_RETRIES = 6


def _source(key: str, settings: Settings) -> Source:
    """Where a partition's media comes from: registered at intake, or a bare YouTube ID."""
    if not is_partition_key(key):
        raise PermanentError(f"invalid partition key {key!r}")
    known = EventQueue(settings.queue_db).get_source(key)
    if known:
        return known
    ref = parse_source(key)  # a partition added by hand in the UI: only YouTube IDs qualify
    if ref.kind != "youtube":
        raise PermanentError(f"unknown partition {key!r}: send its URL with `igs send` first")
    return Source(ref.key, ref.kind, ref.location, ref.label, None)


def _folder(settings: Settings, key: str) -> Path:
    return settings.media_dir / key


@dg.asset(**COMMON, **retrying(RETRY), kinds={"python"}, description=(
    "yt-dlp download (best video up to the quality cap, mp4, info.json, thumbnail) into the "
    "partition's own folder; local files are copied, pasted transcripts recorded."
))
def video_download(context: dg.AssetExecutionContext, igs: IgsSettings,
                   whisper: WhisperModel) -> dg.MaterializeResult:
    settings = igs.get(whisper)  # captions: the transcript's source and language
    key = context.partition_key
    with permanent_failures():
        source = _source(key, settings)
        folder = _folder(settings, key)
        if source.kind in ("youtube", "url"):
            result = _download(context, settings, source.location, folder).to_json()
        elif source.kind == "file":
            result = import_media_file(Path(source.location), folder, key=key, title=source.title,
                                       settings=settings)
        else:
            result = describe_text(Path(source.location), key=key, title=source.title)
        if source.title:  # a title given at intake wins over one guessed from a file name
            result["title"] = source.title
        result.update(feeds.note_fields(feeds.entry_meta(settings.data_dir, key), result))
        clean_info(result)  # file names, intake titles and feed fields are external text too
        result.update(
            source_kind=source.kind,
            source_label=source.label,
            source_location=source.location,
            slug=note_slug(result["title"], key, settings.vault_dir,
                                 claims=settings.data_dir / "note-slugs.sqlite3"),
        )
    claims(context, settings.media_dir).save("video_download", result)
    return dg.MaterializeResult(metadata={
        "title": result["title"],
        "channel": result.get("channel") or "",
        "upload_date": result.get("upload_date") or "",
        "duration_s": float(result.get("duration") or 0),
        "size_bytes": int(result.get("size") or 0),
        "source": dg.MetadataValue.url(result["source_url"]) if result.get("source_url")
        else source.location,
        "folder": dg.MetadataValue.path(str(_folder(settings, key))),
        **({"media": dg.MetadataValue.path(result["video_path"])} if result.get("video_path") else {}),
    })


def _download(context: dg.AssetExecutionContext, settings: Settings, url: str,
              folder: Path) -> download.DownloadResult:
    """yt-dlp with the project's settings. A rate limit pauses the site and asks Dagster to
    retry the step after the pause; a live stream or premiere that has not ended fails the
    run as *waiting*: the `waiting_videos` sensor queues it again when it is due."""
    key = context.partition_key
    progress = ProgressLog(context.log, "download")
    waiting = WaitingVideos(settings.waiting_db)
    polite = download.Politeness.from_settings(
        settings.ytdlp, settings.download_gate_dir,
        on_wait=lambda seconds, why: context.log.info(f"download waits {seconds:.0f} s: {why}"),
    )
    try:
        # public addresses only, on every hop (core/netguard; IGS_NETWORK__ALLOW)
        with netguard.fence(netguard.policy_from_settings(settings)):
            result = download.download_video(
                url, folder, max_height=settings.max_height,
                max_bytes=settings.max_download_mb * 1024 * 1024,
                on_progress=lambda p: progress(p.percent, _speed(p.speed)),
                ytdlp_settings=settings.ytdlp, key=key, polite=polite,
                captions_source=settings.transcriber.source,
                language=settings.transcriber.language,
            )
    except download.RateLimited as err:
        context.log.warning(str(err))
        raise dg.RetryRequested(max_retries=RATE_LIMIT_RETRIES,
                                seconds_to_wait=max(1.0, err.pause_s)) from err
    except download.NotYetAvailable as err:
        waiting.put(key, err.until, str(err))
        raise dg.Failure(description=str(err), allow_retries=False, metadata={
            "waiting_until": dg.MetadataValue.timestamp(err.until),
            "live_status": err.live_status or "",
        }) from None
    except BaseException:
        waiting.remove(key)
        raise
    waiting.remove(key)
    return result


def _speed(bps: float | None) -> str:
    return f"at {bps / 1e6:.1f} MB/s" if bps else ""


# priority: archive the media before transcribing it (as the original pipeline did), so a crash
# during a long transcription never repeats the upload when the run is re-executed from failure
@dg.asset(**COMMON, **retrying(NAS_RETRY, **{"dagster/priority": "1"}), kinds={"sftp"},
          deps=["video_download"], description=(
    "Copy the media to the NAS over SFTP (host keys verified, temp name + rename, identical "
    "files skipped) under {root}/{year}/{slug}/, or to the local archive folder."
))
def video_archive(context: dg.AssetExecutionContext, igs: IgsSettings,
                  archive_target: ArchiveTarget) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, archive_target)
    video_download = handed.load("video_download")
    files, year = archive.download_files(video_download)
    progress = ProgressLog(context.log, "archive")
    with permanent_failures():
        result = archive.make_archive(settings).archive(
            files, year, video_download["slug"],
            on_progress=lambda name, done, total: progress(100 * done / max(total, 1), name),
        ).to_json()
    handed.save("video_archive", result)
    return dg.MaterializeResult(metadata={
        "location": result["location"], "archive": dg.MetadataValue.path(result["location"]),
        "uploaded": result["uploaded"],
        "skipped": result["skipped"], "bytes_sent": result["bytes_sent"],
    })


@dg.asset(**COMMON, **retrying(RETRY), pool=GPU_POOL, kinds={"whisper"}, deps=["video_download"],
          description=(
    "Local Whisper (mlx-whisper on Apple Silicon, faster-whisper elsewhere). The transcript "
    "goes to a JSON file; Dagster keeps only its path and small metadata. Pool `gpu`: one "
    "transcription at a time across all runs."
))
def transcript(context: dg.AssetExecutionContext, igs: IgsSettings,
               whisper: WhisperModel) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, whisper)
    video_download = handed.load("video_download")
    out = _folder(settings, context.partition_key) / "transcript.json"
    with permanent_failures():
        from_captions = _captions_transcript(context, settings, video_download, out)
        if from_captions is not None:
            info = from_captions
        elif video_download.get("text_path"):
            text = Path(video_download["text_path"]).read_text(encoding="utf-8")
            info = text_to_transcript(text, out, source=video_download["source_label"])
        else:
            # every 5 %, not every 15 s: a long transcription adds no more log lines to the
            # instance than a short one (bench figure 4)
            context.log.info(describe_plan(settings.transcriber))
            progress = ProgressLog(context.log, "transcribe", every_pct=5, every_s=float("inf"))
            info = transcribe.transcribe_to_file(
                Path(video_download["video_path"]), out, settings.transcriber,
                on_progress=lambda pos, total: progress(
                    100 * pos / total if total else None, f"({pos:.0f}s of {total:.0f}s)"
                ),
            )
    result = handed.save("transcript", info.to_json())
    return dg.MaterializeResult(metadata={
        "transcript": dg.MetadataValue.path(str(out)),
        "backend": result["backend"],
        "model": f"{result['model']} captions" if result["backend"] == "captions"
        else model_name(str(result["model"]), settings.transcriber.model),
        "language": result.get("language") or "", "duration_s": float(result["duration"]),
        "real_time_factor": float(result["rtf"] or 0), "segments": int(result["segments"]),
        "words": int(result["words"]), "elapsed_s": float(result["elapsed_s"]),
    })


def _captions_transcript(context: dg.AssetExecutionContext, settings: Settings,
                         video_download: dict, out: Path) -> TranscriptInfo | None:
    """The creator's captions as the transcript (IGS_TRANSCRIBER__SOURCE=auto|captions), when
    the download brought a track; None: Whisper transcribes (also when the track is unusable)."""
    path = video_download.get("captions_path")
    if settings.transcriber.source == "whisper" or not path:
        return None
    try:
        info = captions.to_transcript(
            Path(path), out, language=video_download.get("language")
            or captions.base_language(video_download.get("captions_language")) or None,
            kind=video_download.get("captions_kind") or "creator",
            duration=float(video_download.get("duration") or 0),
        )
    except PermanentError as err:
        context.log.warning(f"{err}: transcribing with Whisper instead")
        return None
    context.log.info(f"transcript from the {info.model} captions ({info.language}), not Whisper")
    return info


def _timestamp_link(video_download: dict):
    url = video_download.get("source_url") or ""
    kind = video_download.get("source_kind")
    if kind in ("youtube", "url") and url:
        return lambda seconds: timestamp_url(url, seconds)
    return lambda seconds: None


@dg.asset(**COMMON, **retrying(RETRY), kinds={"markdown"},
          deps=["video_download", "video_archive", "transcript"], description=(
    "The vault note (frontmatter, source callout, summary placeholder, timestamped transcript) "
    "and its link in the daily note, once. Enrichment already in the note is kept."
))
def vault_note(context: dg.AssetExecutionContext, igs: IgsSettings,
               vault: Vault) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, vault)
    video_download, video_archive, transcript = handed.load_each(
        "video_download", "video_archive", "transcript")
    slug = video_download["slug"]
    with permanent_failures():
        vault = checked_vault(settings)  # missing or emptied: fail, never a fresh vault
        data = load_transcript(Path(transcript["path"]))
        note_path = vault / "Resources" / "videos" / f"{slug}.md"
        transcribed = _existing_transcribed_date(note_path) or date.today().isoformat()
        label = video_download["source_label"]
        inp = notes.NoteInput(
            video_id=context.partition_key, title=video_download["title"], source_label=label,
            source_url=video_download.get("source_url"), channel=video_download.get("channel"),
            published=video_download.get("upload_date"),
            duration=float(transcript["duration"] or video_download.get("duration") or 0),
            archive_path=video_archive.get("location"), transcribed=transcribed,
            tags=["video", label], timestamp_url=_timestamp_link(video_download),
            description=video_download.get("feed_description"),
            language=data.get("language"),
            transcript_source="captions" if data.get("backend") == "captions" else None,
            chapters=video_download.get("chapters") or [],
        )
        path = notes.write_note(vault, slug, inp, data)
        linked = link_daily(
            vault, transcribed, slug, inp.title, inp.channel, inp.duration
        )
    handed.save("vault_note", {"note_path": str(path), "slug": slug, "daily": transcribed})
    return dg.MaterializeResult(metadata={
        "note": dg.MetadataValue.path(str(path)),
        "daily_note": f"Daily/{transcribed}.md",
        "daily_link_added": linked,
    })


def _existing_transcribed_date(note_path: Path) -> str | None:
    """Keep the first ingest date so re-runs link the same daily note."""
    if not note_path.is_file():
        return None
    try:
        meta, _ = split_frontmatter(note_path.read_text(encoding="utf-8"))
    except PermanentError:
        return None
    value = meta.get("transcribed")
    return str(value) if value else None


# after search_index: the agent's prompt names the related notes already in the vault
@dg.asset(**COMMON, **retrying(RETRY), kinds={"ai"},
          deps=["video_download", "transcript", "vault_note", "search_index"], description=(
    "Executive summary, key points, speaker context, quotes, related links and tags, written "
    "into the note by an agent CLI (pi, claude, codex) or, offline, the built-in enricher."
))
def enriched_summary(context: dg.AssetExecutionContext, igs: IgsSettings, vault: Vault,
                     agent: AgentRunner) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, vault, agent)
    video_download, transcript = handed.load_each("video_download", "transcript")
    note_path = Path(handed.load("vault_note")["note_path"])
    with permanent_failures():
        checked_vault(settings)
        if settings.agent.tool == "none":
            data = load_transcript(Path(transcript["path"]))
            result = enrich.builtin_enrich(
                note_path, data, video_download, timestamp_url=_timestamp_link(video_download)
            )
        else:
            result = enrich.agent_enrich(
                note_path, settings.agent.tool, settings.agent,
                work_dir=_folder(settings, context.partition_key),
                transcript_path=Path(transcript["path"]),
                vault_context=_related_context(settings, context.partition_key),
            )
    handed.save("enriched_summary", result.to_json())
    return dg.MaterializeResult(metadata={
        "enricher": result.enricher, "method": result.method,
        "duration_s": round(result.duration_s, 2),
        "preview": dg.MetadataValue.md(redact(result.preview)[:1500]),
        "open_note": dg.MetadataValue.url(obsidian_url(settings.vault_dir, note_path)),
    })


def _related_context(settings: Settings, key: str) -> str:
    """The top related notes for the agent's prompt ('' when there are none, or no index)."""
    from igs_dagster.video.search.index import SearchIndex, index_path
    from igs_dagster.video.search.related import prompt_context, related_notes

    path = index_path(settings.data_dir)
    if not path.is_file():
        return ""
    with SearchIndex(path) as index:
        return prompt_context(related_notes(index, key, limit=3))

"""The video pipeline's intake: `video.download`, `transcript.process` and `content.summarize`
events checked, keyed and queued; playlists and feeds read and queued entry by entry.

Nothing is written unless the whole event is valid. The partition key is decided here
(`source_for`, no side effects) and stored with the event, so the inbox sensor and any later
run of that partition use the same key. The router (igs_dagster/intake.py) hands events here.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from igs_dagster.core import fsutil, netguard, pathguard
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import ContentSummarize, Event, TranscriptProcess, VideoDownload
from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.core.inbox import Accepted, EventQueue, Source
from igs_dagster.core.pathguard import Origin
from igs_dagster.core.settings import Settings
from igs_dagster.video.ids import is_partition_key, parse_source, text_key, youtube_id

MAX_NOTE_BYTES = 10 * 1024 * 1024


def source_for(event: Event, settings: Settings, origin: Origin = "cli") -> Source | None:
    """The partition source an event refers to (no side effects). A local file must lie under
    the media folders for `origin` (core/pathguard: none over HTTP until configured)."""
    fence = pathguard.media_fence(settings, origin)
    if isinstance(event, VideoDownload):
        ref = parse_source(event.data.url, fence)
        if ref.kind == "url":  # a blocked address in any notation, before any request
            netguard.check_url_host(urlsplit(ref.location).hostname or "",
                                    netguard.policy_from_settings(settings))
        return Source(ref.key, ref.kind, ref.location, ref.label, None)
    if isinstance(event, TranscriptProcess):
        data = event.data
        if data.file is not None:
            if not data.file.expanduser().is_absolute():
                raise PermanentError(f"transcript.process file must be an absolute path, got {data.file}")
            ref = parse_source(str(data.file), fence)
            if ref.kind != "file":
                raise PermanentError(f"transcript.process file must be a local file, got {data.file}")
            return Source(ref.key, "file", ref.location, data.source, data.title)
        if not (data.text or "").strip():
            raise PermanentError("transcript.process text is empty")
        key = text_key(data.title, data.text or "")
        stored = settings.data_dir / "inbox" / f"{key}.txt"
        return Source(key, "text", str(stored), data.source, data.title)
    return None


def note_video_id(note: Path, settings: Settings, queue: EventQueue | None = None) -> str:
    """The partition key recorded in a vault note's frontmatter (content.summarize).

    The note must be a Markdown file inside the vault (symlinks resolved) whose `video_id` names
    a partition this deployment knows: a queued source, or a YouTube ID.
    """
    from igs_dagster.video.frontmatter import split_frontmatter

    vault = settings.vault_dir.resolve()
    note = Path(note).expanduser()
    path = (note if note.is_absolute() else vault / note).resolve()
    if vault not in path.parents:
        raise PermanentError(f"note {note} is not inside the vault {settings.vault_dir}")
    if path.suffix.lower() != ".md":
        raise PermanentError(f"note {note} is not a Markdown (.md) file")
    # no blocking on a FIFO, no reading /dev/zero, one line whether or not it exists
    data = fsutil.read_regular_file(path, MAX_NOTE_BYTES, f"note {note}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError(f"note {note} is not UTF-8 text") from None
    try:
        meta, _ = split_frontmatter(text)
    except PermanentError as err:
        raise PermanentError(f"note {note}: {err}") from None
    key = meta.get("video_id")
    if not key:
        raise PermanentError(f"note {note} has no video_id in its frontmatter")
    key = str(key)
    if not is_partition_key(key):
        raise PermanentError(f"note {note} has an invalid video_id {key[:80]!r}")
    queue = queue or EventQueue(settings.queue_db)
    if youtube_id(key) != key and (not settings.queue_db.exists() or queue.get_source(key) is None):
        raise PermanentError(f"note {note}: video_id {key!r} was never sent to this deployment")
    return key


def accept(event: Event, settings: Settings, queue: EventQueue, origin: Origin = "cli") -> Accepted:
    """Validate and queue a video event; raise PermanentError (nothing written) if it's
    unusable. A source queued before is queued again but marked `known` (one run per video)."""
    if isinstance(event, ContentSummarize):
        key = note_video_id(event.data.note, settings, queue)
        event_id = queue.put(event, key=key)
        return Accepted(event_id, event.name, key, f"queued enrichment of {key}")
    source = source_for(event, settings, origin)
    if source is None:
        raise PermanentError(f"{event.name} is not an event of the video pipeline")
    if source.kind == "text":
        # the text travels by claim check: a file in the data folder, not the queue row
        text = event.data.text if isinstance(event, TranscriptProcess) else None
        if text is None:
            raise PermanentError(f"{event.name} has no text to store")
        stored = Path(source.location)
        if not stored.exists():
            atomic_write_text(stored, text)
        event = TranscriptProcess(
            name="transcript.process",
            data=event.data.model_copy(update={"text": f"(stored in {stored.name})"}),
        )
    known = queue.get_source(source.key) is not None
    event_id = queue.put(event, source=source, key=source.key)
    note = " (already known: one run per video)" if known else ""
    return Accepted(event_id, event.name, source.key, f"queued {source.key}{note}", known)


def read_playlist(url: str, *, limit: int | None = None):
    """A playlist, channel or feed URL -> its entries (yt-dlp flat extraction: nothing is
    downloaded). Nothing is written."""
    from igs_dagster.video import feeds

    if limit is not None and limit < 1:
        raise PermanentError("--limit must be at least 1")
    if not url.strip().lower().startswith(("http://", "https://")):
        raise PermanentError(f"invalid playlist URL {url[:80]!r}: use http or https")
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        raise PermanentError(f"invalid playlist URL {url[:80]!r}") from None
    netguard.check_url_host(host, netguard.policy_from_settings())
    return feeds.read_playlist(url.strip(), limit)


def accept_entries(entries, settings: Settings, *, dry_run: bool = False,
                   queue: EventQueue | None = None):
    """Queue one `video.download` per entry, in order, in one transaction; entries whose key
    is already known are not queued again. Returns [feeds.Queued] (event_id None = known)."""
    from igs_dagster.video import feeds

    queue = queue or EventQueue(settings.queue_db)
    if dry_run:
        return feeds.plan_entries(entries, queue)
    return feeds.queue_entries(entries, queue, settings.data_dir)

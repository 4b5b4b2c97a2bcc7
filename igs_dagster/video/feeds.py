"""Playlists, channels and podcast feeds -> entries -> queued partitions.

Two readers make the same `Entry` list: `read_feed` (an RSS/Atom/podcast or YouTube channel
feed over HTTP with ETag/Last-Modified caching, parsed by feedparser) and `read_playlist`
(anything yt-dlp extracts as a playlist, flat: no media is fetched). `queue_entries` turns
entries into inbox events with their sources, skipping keys already known, so a playlist sent
twice or a feed polled twice queues every entry once. Podcast details (show, date,
description) travel to the note in a small JSON file per key (`entry_meta`).
"""

from __future__ import annotations

import calendar
import html
import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from igs_dagster.core import netguard
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.core.inbox import EventQueue, Source
from igs_dagster.core.redact import redact
from igs_dagster.core.settings import YtdlpSettings
from igs_dagster.core.sqlite import open_db
from igs_dagster.core.text import one_line
from igs_dagster.video.ids import is_partition_key, parse_source, youtube_id

MAX_FEED_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_S = 15.0
MAX_DESCRIPTION = 4000
USER_AGENT = "igs-dagster feed reader (+feedparser)"
YT_FEED = "https://www.youtube.com/feeds/videos.xml"
_FEEDY_PATH = re.compile(r"(\.(rss|xml|atom)$|/(feed|rss|atom|podcast)s?(/|$))", re.IGNORECASE)
_YT_CHANNEL_ID = re.compile(r"UC[A-Za-z0-9_-]{22}")
_TAG = re.compile(r"<[^>]+>")


class FeedError(PermanentError):
    """A feed could not be read or parsed (one line, no traceback)."""

    status: int | None = None  # the HTTP status that refused it, if one did


@dataclass(frozen=True)
class Entry:
    """One episode or video of a feed or playlist."""

    uid: str  # stable within its feed: guid, video ID or media URL
    url: str  # what the pipeline downloads: a YouTube watch URL or a media URL
    title: str | None = None
    published: str | None = None  # YYYY-MM-DD
    show: str | None = None
    description: str | None = None
    duration: float | None = None
    timestamp: float | None = None  # for ordering: newest first


@dataclass(frozen=True)
class FeedPage:
    title: str | None
    entries: list[Entry]  # newest first
    etag: str | None = None
    modified: str | None = None
    not_modified: bool = False


# --------------------------------------------------------------------------- URLs


def _yt_host(parts) -> bool:
    host = (parts.hostname or "").lower()
    return host in ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com")


def is_playlist_url(url: str) -> bool:
    """True for what `igs send` expands instead of downloading: YouTube playlists and channels,
    and URLs that look like feeds (`.rss`, `.xml`, `.atom`, `/feed`). A watch URL with a
    `list=` stays one video, as before."""
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else "https://" + text)
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https"):
        return False
    if _yt_host(parts):
        if youtube_id(text):
            return False
        segments = [s for s in parts.path.split("/") if s]
        return bool(
            parse_qs(parts.query).get("list")
            or (segments and (segments[0].startswith("@") or segments[0] in ("channel", "c", "user")))
        )
    return bool(_FEEDY_PATH.search(parts.path))


def youtube_feed_url(url: str) -> str | None:
    """The public feed of a YouTube channel (`/channel/UC...`) or playlist (`list=`), when the
    URL names one directly; None otherwise (a `/@handle` needs a look-up: `resolve_follow`)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not _yt_host(parts):
        return None
    if parts.path.rstrip("/") == "/feeds/videos.xml":
        return url.strip()
    playlist = parse_qs(parts.query).get("list")
    if playlist and re.fullmatch(r"[A-Za-z0-9_-]{2,64}", playlist[0]):
        return f"{YT_FEED}?playlist_id={playlist[0]}"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) >= 2 and segments[0] == "channel" and _YT_CHANNEL_ID.fullmatch(segments[1]):
        return f"{YT_FEED}?channel_id={segments[1]}"
    return None


def resolve_follow(url: str) -> tuple[str, str]:
    """(what to poll, how): ("feed URL", "feed") or (URL, "playlist") for yt-dlp polling."""
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise FeedError(f"cannot follow {one_line(url, 80)!r}: give an http(s) URL")
    direct = youtube_feed_url(url)
    if direct:
        return direct, "feed"
    parts = urlsplit(url)
    if _yt_host(parts):  # /@handle, /c/name, /user/name: ask yt-dlp for the channel ID
        info = _ytdlp_info(url, limit=1)
        channel_id = info.get("channel_id") or info.get("uploader_id") or ""
        if _YT_CHANNEL_ID.fullmatch(str(channel_id)):
            return f"{YT_FEED}?channel_id={channel_id}", "feed"
        return url, "playlist"
    return url, "feed"


# --------------------------------------------------------------------------- feeds


_OPENER = urllib.request.OpenerDirector()
for _handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                 urllib.request.HTTPRedirectHandler(), urllib.request.HTTPDefaultErrorHandler(),
                 urllib.request.HTTPErrorProcessor()):
    _OPENER.add_handler(_handler)


def fetch(url: str, etag: str | None = None, modified: str | None = None,
          timeout: float = FETCH_TIMEOUT_S) -> tuple[int, bytes, str | None, str | None]:
    """GET with conditional headers: (status, body, etag, last-modified); 304 -> empty body."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    request = urllib.request.Request(url, headers=headers)
    try:
        # public addresses only, redirects included (core/netguard); no proxy, no ftp/file
        with netguard.fence(), _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_FEED_BYTES + 1)
            if len(body) > MAX_FEED_BYTES:
                raise FeedError(f"feed {url} is larger than {MAX_FEED_BYTES // 2**20} MiB")
            return (response.status, body, response.headers.get("ETag"),
                    response.headers.get("Last-Modified"))
    except urllib.error.HTTPError as err:
        if err.code == 304:
            return 304, b"", etag, modified
        error = FeedError(f"feed {url}: HTTP {err.code} {one_line(err.reason, 80)}")
        error.status = err.code
        raise error from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise FeedError(f"feed {url}: {one_line(reason, 120)}") from None


def read_feed(url: str, etag: str | None = None, modified: str | None = None,
              timeout: float = FETCH_TIMEOUT_S) -> FeedPage:
    """Fetch and parse a feed; `not_modified` when the server answered 304."""
    status, body, new_etag, new_modified = fetch(url, etag, modified, timeout)
    if status == 304:
        return FeedPage(None, [], etag, modified, not_modified=True)
    title, entries = parse_feed(body, url)
    return FeedPage(title, entries, new_etag, new_modified)


def parse_feed(body: bytes, url: str = "feed") -> tuple[str | None, list[Entry]]:
    """(feed title, entries with media, newest first); garbage -> FeedError."""
    import feedparser

    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    feed = parsed.get("feed") or {}
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise FeedError(f"{url} is not an RSS/Atom feed" + (f" ({one_line(problem, 100)})" if problem else ""))
    show = one_line(feed.get("title") or "", 300) or None
    entries = [e for e in (_entry(item, show) for item in parsed.entries) if e is not None]
    if all(e.timestamp is not None for e in entries):
        entries.sort(key=lambda e: e.timestamp, reverse=True)
    return show, entries


def _description(value: object) -> str | None:
    """Plain text of an episode description (tags dropped, entities decoded), one line per
    paragraph, capped: it is untrusted text that ends up in a note."""
    text = html.unescape(_TAG.sub(" ", str(value or "")))
    lines = (one_line(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)[:MAX_DESCRIPTION] or None


def _entry(item, show: str | None) -> Entry | None:
    when = item.get("published_parsed") or item.get("updated_parsed")
    timestamp = float(calendar.timegm(when)) if when else None
    published = time.strftime("%Y-%m-%d", when) if when else None
    title = one_line(item.get("title") or "", 300) or None
    description = _description(item.get("summary") or item.get("description"))
    video = item.get("yt_videoid") or youtube_id(item.get("link") or "")
    if video and youtube_id(video) == video:
        url = f"https://www.youtube.com/watch?v={video}"
        return Entry(video, url, title, published, one_line(item.get("author") or show or "", 300) or None,
                     description, None, timestamp)
    media = _enclosure(item)
    if media is None:
        return None  # an article without audio or video: nothing to transcribe
    duration = _duration(item.get("itunes_duration"))
    uid = one_line(item.get("id") or item.get("guid") or media, 500)
    return Entry(uid, media, title, published, show, description, duration, timestamp)


def _enclosure(item) -> str | None:
    candidates = list(item.get("enclosures") or []) + list(item.get("media_content") or [])
    for link in candidates:
        href = link.get("href") or link.get("url")
        kind = str(link.get("type") or "")
        if href and (kind.startswith(("audio/", "video/")) or not kind):
            return str(href).strip()
    return None


def _duration(value: object) -> float | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds
    except ValueError:
        return None


def newest(entries: list[Entry], count: int | None) -> list[Entry]:
    """The `count` newest entries (all when None), oldest first: the order to queue them in."""
    chosen = entries if count is None else entries[: max(0, count)]
    return list(reversed(chosen))


# --------------------------------------------------------------------------- yt-dlp playlists


def _ytdlp_info(url: str, limit: int | None = None,
                ytdlp_settings: YtdlpSettings | None = None) -> dict:
    """A playlist or channel, flat, through yt-dlp with the project's base options (cookies,
    JS runtime, the pause between requests: video/ytdlp.py)."""
    import yt_dlp

    from igs_dagster.video import refusals, ytdlp

    options = {
        "extract_flat": "in_playlist", "no_warnings": True,
        "skip_download": True, "lazy_playlist": False, "socket_timeout": FETCH_TIMEOUT_S,
    }
    if limit:
        options["playlistend"] = limit
    try:
        with ytdlp.open_ytdlp(ytdlp_settings, options) as ydl:
            info = ydl.extract_info(url, download=False)
            return ydl.sanitize_info(info) or {}
    except yt_dlp.utils.DownloadError as err:
        known = refusals.classify(err)
        reason = known.message() if known else refusals.clean_reason(err)
        raise FeedError(f"cannot read playlist {url}: {one_line(redact(reason), 300)}") from None


def read_playlist(url: str, limit: int | None = None, *,
                  ytdlp_settings: YtdlpSettings | None = None) -> FeedPage:
    """Entries of anything yt-dlp extracts as a playlist, in playlist order; flat extraction
    (no entry is resolved or downloaded). A single video -> FeedError."""
    if not _yt_host(urlsplit(url)):
        # an RSS/Atom feed: feedparser reads it in one request with the podcast details
        # (yt-dlp's generic extractor took 8 s for 500 entries); anything else: yt-dlp
        try:
            page = read_feed(url)
            return FeedPage(page.title, page.entries[:limit] if limit else page.entries)
        except FeedError as err:
            # not a feed, or a page behind a login: yt-dlp reads it (with the cookies setting)
            if "not an RSS/Atom feed" not in str(err) and err.status not in (401, 403):
                raise
    from yt_dlp.utils import unsmuggle_url  # 0.2-2 s of imports: only when yt-dlp is needed

    info = _ytdlp_info(url, limit, ytdlp_settings)
    if info.get("_type") != "playlist":
        raise FeedError(f"{url} is not a playlist or feed (yt-dlp found one item)")
    show = one_line(info.get("title") or info.get("channel") or info.get("uploader") or "", 300) or None
    entries = []
    for item in info.get("entries") or []:
        if not isinstance(item, dict):
            continue
        target, extra = unsmuggle_url(str(item.get("url") or item.get("webpage_url") or ""), {})
        video = youtube_id(target) or (
            item.get("id") if item.get("ie_key") == "Youtube" and youtube_id(str(item.get("id"))) else None
        )
        if video:
            target = f"https://www.youtube.com/watch?v={video}"
        if not target.lower().startswith(("http://", "https://")):
            continue
        stamp = item.get("timestamp")
        published = (datetime.fromtimestamp(stamp, UTC).date().isoformat()
                     if isinstance(stamp, int | float) else None)
        entries.append(Entry(
            uid=video or str((extra or {}).get("force_videoid") or target),
            url=target,
            title=one_line(item.get("title") or "", 300) or None,
            published=published,
            show=show if not video else one_line(item.get("channel") or show or "", 300) or None,
            description=_description(item.get("description")),
            duration=float(item["duration"]) if isinstance(item.get("duration"), int | float) else None,
            timestamp=float(stamp) if isinstance(stamp, int | float) else None,
        ))
        if limit and len(entries) >= limit:
            break
    return FeedPage(show, entries)


# --------------------------------------------------------------------------- intake


@dataclass(frozen=True)
class Queued:
    entry: Entry
    key: str
    event_id: int | None  # None: already known, not queued again


def _meta_db(data_dir: Path) -> Path:
    return Path(data_dir) / "feeds" / "entries.sqlite3"


def _meta_conn(data_dir: Path) -> AbstractContextManager[sqlite3.Connection]:
    return open_db(_meta_db(data_dir),
                   "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, data TEXT NOT NULL);")


def save_meta(data_dir: Path, metas: dict[str, dict]) -> None:
    """Record feed details per key, in one transaction (a file per key cost 13 ms each)."""
    if not metas:
        return
    with _meta_conn(data_dir) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO meta (key, data) VALUES (?, ?)",
                         [(k, json.dumps(v, ensure_ascii=False)) for k, v in metas.items()])
        conn.execute("COMMIT")


def entry_meta(data_dir: Path, key: str) -> dict:
    """Show, date, description, duration recorded for a key queued from a feed ({} if none)."""
    if not is_partition_key(key) or not _meta_db(data_dir).exists():
        return {}
    with _meta_conn(data_dir) as conn:
        row = conn.execute("SELECT data FROM meta WHERE key = ?", (key,)).fetchone()
    try:
        data = json.loads(row[0]) if row else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def note_fields(meta: dict, download: dict) -> dict:
    """What a feed entry adds to a download's result: the show as channel and the episode's
    date win over what a direct media link suggests (yt-dlp takes a date from Last-Modified);
    duration only where the download knows none."""
    fields: dict = {}
    if meta.get("show"):
        fields["channel"] = str(meta["show"])
    if meta.get("published"):
        fields["upload_date"] = str(meta["published"])
    if meta.get("duration") and not download.get("duration"):
        fields["duration"] = float(meta["duration"])
    if meta.get("description"):
        fields["feed_description"] = str(meta["description"])[:MAX_DESCRIPTION]
    return fields


def plan_entries(entries: list[Entry], queue: EventQueue) -> list[Queued]:
    """Key every entry (entries whose URL is unusable are dropped) and say which are new."""
    keyed: list[tuple[Entry, str]] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            ref = parse_source(entry.url)
        except PermanentError:
            continue
        if ref.kind == "file" or ref.key in seen:
            continue
        seen.add(ref.key)
        keyed.append((entry, ref.key))
    # a dry run creates no queue file
    known = queue.known_keys([k for _, k in keyed]) if queue.path.exists() else set()
    return [Queued(entry, key, None if key in known else 0) for entry, key in keyed]


def queue_entries(entries: list[Entry], queue: EventQueue, data_dir: Path,
                  label: str = "podcast") -> list[Queued]:
    """Queue each new entry (in the given order) as a `video.download` event with its source;
    keys already known are skipped. One transaction for the whole batch."""
    planned = plan_entries(entries, queue)
    batch = []
    metas = {}
    for item in planned:
        if item.event_id is None:
            continue
        ref = parse_source(item.entry.url)
        entry_label = "youtube" if ref.kind == "youtube" else label
        metas[ref.key] = {k: v for k, v in asdict(item.entry).items() if k not in ("uid", "timestamp") and v}
        event = VideoDownload(name="video.download", data=VideoDownloadData(url=ref.location))
        batch.append((event, Source(ref.key, ref.kind, ref.location, entry_label, item.entry.title),
                      ref.key))
    save_meta(data_dir, metas)  # before the events: a run never starts without its details
    ids = iter(queue.put_many(batch))
    return [Queued(q.entry, q.key, next(ids) if q.event_id is not None else None) for q in planned]


"""Download one video with yt-dlp's Python API into a folder of its own.

Everything lands in `dest_dir` under fixed names (`video.mp4`, `video.info.json`,
`video.<jpg|webp|png>`), and `download.json` is written last: its presence means the
download is complete, so a retried or re-run step returns at once without the network.
Failures that retrying cannot fix raise `PermanentError`; all other failures are transient
(`TransientDownloadError`). Either way the attempt leaves nothing of its own behind (no `.part`).
Known refusals (video/refusals.py) say what to do in the error's one line; a rate limit
(`RateLimited`) pauses every download from that site (video/download_gate.py); a live stream or
premiere that has not ended yet raises `NotYetAvailable` with the time to try again.
yt-dlp is opened through video/ytdlp.py (runtime, cookies, polite pauses) like every other call.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
from yt_dlp.utils import DownloadError, ExtractorError

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.errors import error_chain as _chain
from igs_dagster.core.inert import clean_info
from igs_dagster.core.settings import YtdlpSettings
from igs_dagster.video import ytdlp
from igs_dagster.video.download_errors import (  # noqa: F401 - re-exported for callers
    LIVE_STATES,
    NotYetAvailable,
    Politeness,
    RateLimited,
    TransientDownloadError,
    first_reason,
    is_permanent,
    live_info,
    not_live,
    not_started,
    refused,
    waiting,
)
from igs_dagster.video.download_gate import site_of

_first_line = first_reason
_is_permanent = is_permanent  # tests classify with it

log = logging.getLogger(__name__)

MANIFEST = "download.json"
VIDEO_STEM = "video"
THUMBNAIL_EXTS = ("jpg", "jpeg", "webp", "png")


@dataclass
class DownloadProgress:
    percent: float | None
    downloaded_bytes: int
    total_bytes: int | None
    speed: float | None
    eta: float | None


_PATH_FIELDS = ("video_path", "info_path", "thumbnail_path", "captions_path")


@dataclass
class DownloadResult:
    video_path: Path
    info_path: Path
    thumbnail_path: Path | None
    video_id: str
    title: str
    channel: str | None
    upload_date: str | None  # YYYY-MM-DD
    duration: float
    size: int
    source_url: str
    extractor: str
    description: str | None
    chapters: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    language: str | None = None  # the spoken language, when the site says (YouTube does)
    captions_path: Path | None = None  # the caption track chosen as transcript (captions.choose)
    captions_language: str | None = None
    captions_kind: str | None = None  # creator | automatic

    def to_json(self) -> dict:
        data = asdict(self)
        for name in _PATH_FIELDS:
            data[name] = None if data[name] is None else str(data[name])
        return data

    @classmethod
    def from_json(cls, data: dict, folder: Path) -> DownloadResult:
        """Rebuild a recorded result; files are found by name in `folder` (it may have moved)."""
        data = dict(data)
        for name in _PATH_FIELDS:
            if data.get(name) is not None:
                data[name] = folder / Path(data[name]).name
        return cls(**data)


def ffmpeg_location() -> str:
    """`ffmpeg` on PATH if installed, else the static binary shipped by imageio-ffmpeg."""
    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def _open_media(path: Path) -> Any:
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise PermanentError(f"unreadable media {Path(path).name}: {_first_line(err)}") from None


def _container_duration(container: Any) -> float:
    if container.duration:
        return container.duration / av.time_base
    streams = [float(s.duration * s.time_base) for s in container.streams if s.duration]
    if streams:
        return max(streams)
    ends = [
        float((p.pts + (p.duration or 0)) * p.time_base)
        for p in container.demux()
        if p.pts is not None and p.time_base is not None
    ]
    return max(ends, default=0.0)


def media_duration(path: Path) -> float:
    """Length in seconds from the container or its streams; PermanentError if unreadable."""
    with _open_media(path) as container:
        try:
            duration = _container_duration(container)
        except (av.FFmpegError, ValueError) as err:
            raise PermanentError(
                f"unreadable media {Path(path).name}: {_first_line(err)}"
            ) from None
    if duration <= 0:
        raise PermanentError(f"media {Path(path).name} has no duration")
    return duration


def _verify_media(path: Path) -> None:
    """Refuse files PyAV cannot open, without an audio stream, or whose audio won't decode."""
    with _open_media(path) as container:
        if not container.streams.audio:
            raise PermanentError(f"downloaded media {path.name} has no audio stream")
        try:
            decoded = next(iter(container.decode(audio=0)), None)
        except (av.FFmpegError, ValueError) as err:
            raise PermanentError(f"corrupt audio in {path.name}: {_first_line(err)}") from None
        if decoded is None:
            raise PermanentError(f"no decodable audio in {path.name}")


class TooLarge(Exception):
    """Raised from the progress hook: a stream without a declared size grew past the cap."""


class _ProgressRelay:
    """Turn yt-dlp hook calls into throttled `DownloadProgress` calls (every 5 % or second).

    Merged formats arrive as separate files; their bytes are summed and the percentage is
    kept from going backwards when the second file starts. More than `max_bytes` in all
    stops the download (yt-dlp's own `max_filesize` only sees declared sizes).
    """

    def __init__(
        self, callback: Callable[[DownloadProgress], None] | None, max_bytes: int | None = None
    ) -> None:
        self.callback = callback
        self.max_bytes = max_bytes
        self.logger = ytdlp.YtdlpLogger()
        self.finished_bytes = 0
        self.best = 0.0
        self.last_percent = -100.0
        self.last_time = 0.0

    def __call__(self, d: dict) -> None:
        if d.get("status") == "finished":
            self.finished_bytes += int(d.get("total_bytes") or d.get("downloaded_bytes") or 0)
            return
        if d.get("status") != "downloading":
            return
        done = self.finished_bytes + int(d.get("downloaded_bytes") or 0)
        if self.max_bytes is not None and done > self.max_bytes:
            raise TooLarge(f"larger than the {_mb(self.max_bytes)} limit")
        if self.callback is None:
            return
        current_total = d.get("total_bytes") or d.get("total_bytes_estimate")
        total = self.finished_bytes + int(current_total) if current_total else None
        percent = None
        if total:
            self.best = max(self.best, min(99.9, 100.0 * done / total))
            percent = self.best
        now = time.monotonic()
        if now - self.last_time < 1.0 and (percent is None or percent - self.last_percent < 5):
            return
        self.last_time, self.last_percent = now, percent if percent is not None else -100.0
        self.callback(DownloadProgress(percent, done, total, d.get("speed"), d.get("eta")))

    def finish(self, size: int) -> None:
        if self.callback is not None:
            self.callback(DownloadProgress(100.0, size, size, None, 0.0))


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _options(dest_dir: Path, max_height: int, relay: _ProgressRelay) -> dict:
    """This call's own options, on top of ytdlp.base_options."""
    return {
        "max_filesize": relay.max_bytes,
        "paths": {"home": str(dest_dir), "temp": str(dest_dir)},
        "outtmpl": {"default": f"{VIDEO_STEM}.%(ext)s"},
        "format": "bv*+ba/b",
        # Largest resolution up to max_height (else the smallest above it), mp4 + m4a first.
        "format_sort": [f"res:{int(max_height)}", "ext:mp4:m4a"],
        "merge_output_format": "mp4",
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "ffmpeg_location": ffmpeg_location(),
        "writeinfojson": True,
        "writethumbnail": True,
        "noplaylist": True,
        "playlist_items": "1",
        "allow_playlist_files": False,
        "progress_hooks": [relay],
        # a live stream is not recorded while it runs: the video is taken once it has ended
        "match_filter": not_live,
    }


def _iso_date(value: Any) -> str | None:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if re.fullmatch(r"\d{8}", text) else None


def _recorded(dest_dir: Path) -> DownloadResult | None:
    """The finished download recorded in `dest_dir`, if its video file is still intact."""
    manifest = dest_dir / MANIFEST
    if not manifest.is_file():
        return None
    try:
        result = DownloadResult.from_json(json.loads(manifest.read_text("utf-8")), dest_dir)
        if result.video_path.stat().st_size == result.size:
            return result
    except (OSError, ValueError, TypeError):
        pass
    manifest.unlink(missing_ok=True)
    return None


def _result(
    info: dict, dest_dir: Path, url: str, max_bytes: int | None = None, too_large: bool = False
) -> DownloadResult:
    if info.get("_type") == "playlist":
        entries = [e for e in info.get("entries") or [] if e]
        if not entries:
            raise PermanentError(f"download failed: no video found at {url}")
        info = entries[0]
    downloads = info.get("requested_downloads") or [{}]
    video_path = Path(downloads[0].get("filepath") or dest_dir / "missing")
    if video_path.parent != dest_dir or not video_path.is_file():
        if max_bytes is not None and too_large:  # yt-dlp skipped it (max_filesize)
            raise PermanentError(
                f"download failed: the video is larger than the {_mb(max_bytes)} limit "
                "(IGS_MAX_DOWNLOAD_MB)"
            )
        raise TransientDownloadError(f"download failed: yt-dlp left no file in {dest_dir}")
    if max_bytes is not None and video_path.stat().st_size > max_bytes:
        raise PermanentError(
            f"download failed: the video is larger than the {_mb(max_bytes)} limit (IGS_MAX_DOWNLOAD_MB)"
        )
    try:
        _verify_media(video_path)
    except PermanentError as err:
        raise PermanentError(f"download failed: {err}") from None
    thumbnails = [dest_dir / f"{VIDEO_STEM}.{ext}" for ext in THUMBNAIL_EXTS]
    if info.get("extractor") == "generic" and info.get("direct"):
        info = _with_media_tags(info, video_path)
    captions = _captions_file(info, dest_dir)
    info = clean_info(dict(info))  # titles, channels, descriptions come from strangers
    return DownloadResult(
        video_path=video_path,
        info_path=dest_dir / f"{VIDEO_STEM}.info.json",
        thumbnail_path=next((p for p in thumbnails if p.is_file()), None),
        video_id=str(info.get("id") or VIDEO_STEM),
        title=str(info.get("title") or info.get("id") or "untitled"),
        channel=info.get("channel") or info.get("uploader"),
        upload_date=_iso_date(info.get("upload_date")),
        duration=float(info.get("duration") or media_duration(video_path)),
        size=video_path.stat().st_size,
        source_url=str(info.get("webpage_url") or url),
        extractor=str(info.get("extractor") or "unknown"),
        description=info.get("description"),
        chapters=[dict(c) for c in info.get("chapters") or []],
        tags=[str(t) for t in info.get("tags") or []],
        language=str(info["language"]) if info.get("language") else None,
        captions_path=captions[0] if captions else None,
        captions_language=captions[1] if captions else None,
        captions_kind=captions[2] if captions else None,
    )


def _captions_file(info: dict, dest_dir: Path) -> tuple[Path, str, str] | None:
    """(file, language, creator|automatic) of the caption track yt-dlp wrote, if any."""
    for lang, sub in (info.get("requested_subtitles") or {}).items():
        path = Path(str((sub or {}).get("filepath") or dest_dir / "missing"))
        if path.parent == dest_dir and path.is_file():
            kind = "creator" if lang in (info.get("subtitles") or {}) else "automatic"
            return path, str(lang), kind
    return None


def _with_media_tags(info: dict, video_path: Path) -> dict:
    """A direct media link's title is its file name and its date the server's Last-Modified:
    take the media's own tags instead (and no date at all when it has none)."""
    from igs_dagster.video.media_tags import read_tags

    tags = read_tags(video_path)
    return {**info, "title": tags["title"] or info.get("title"),
            "uploader": info.get("uploader") or tags["author"],
            "upload_date": (tags["date"] or "").replace("-", "") or None}


def _remove_ours(dest_dir: Path, created: bool) -> None:
    """Delete every file this module names in `dest_dir`, so refused input leaves nothing."""
    if not dest_dir.is_dir():
        return
    for entry in dest_dir.iterdir():
        ours = (
            entry.name.startswith((f"{VIDEO_STEM}.", fsutil.TEMP_PREFIX)) or entry.name == MANIFEST
        )
        if ours and not entry.is_dir():
            entry.unlink(missing_ok=True)
    if created and not any(dest_dir.iterdir()):
        dest_dir.rmdir()


def _extract(ydl: Any, url: str, captions_source: str, language: str | None) -> dict:
    """yt-dlp's extract + download; with captions wanted, extract first, choose the caption
    track (captions.choose), then download the media and that track together."""
    if captions_source == "whisper":
        return ydl.extract_info(url, download=True)
    from igs_dagster.video import captions

    info = ydl.extract_info(url, download=False, process=False)
    if info.get("_type", "video") == "video":
        choice = captions.choose(info, captions_source, language)
        if choice is not None:
            ydl.params.update({
                "writesubtitles": choice.kind == "creator",
                "writeautomaticsub": choice.kind == "automatic",
                "subtitleslangs": [choice.language], "subtitlesformat": captions.FORMATS,
            })
    return ydl.process_ie_result(info, download=True)


def download_video(
    url: str,
    dest_dir: Path,
    *,
    max_height: int = 1080,
    max_bytes: int | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    ytdlp_settings: YtdlpSettings | None = None,
    key: str | None = None,
    polite: Politeness | None = None,
    captions_source: str = "whisper",
    language: str | None = None,
) -> DownloadResult:
    """Download `url` into `dest_dir` once; a finished download is returned from its record.

    `max_bytes`: larger media is refused (declared sizes before, streamed bytes during, the
    file after the download) with a PermanentError naming the limit. `ytdlp_settings`: runtime,
    cookies and pauses (default: the environment's). `key`: named in the fix of a refusal
    (`igs retry KEY`). `polite`: waits for the site's pause and spacing first, and pauses the
    site after a 429. `captions_source` `auto`/`captions`: the creator's captions in the spoken
    language (`language` when yt-dlp does not say) are downloaded too (captions.choose).

    Raises PermanentError for what a retry cannot fix (NotYetAvailable: a live stream or
    premiere to wait for), TransientDownloadError otherwise (RateLimited after a 429).
    """
    dest_dir = Path(dest_dir).absolute()
    done = _recorded(dest_dir)
    if done is not None:
        return done
    site = site_of(url)
    if polite is not None:
        spacing = polite.spacing_s if site in polite.polite_sites else (0.0, 0.0)
        polite.gate.wait_turn(site, spacing, on_wait=polite.on_wait)
    created = not dest_dir.exists()
    fsutil.sweep_temp_files(dest_dir)
    _remove_ours(dest_dir, created=False)  # unrecorded files may be stale: yt-dlp would keep them
    relay = _ProgressRelay(on_progress, max_bytes)
    try:
        with ytdlp.open_ytdlp(ytdlp_settings, _options(dest_dir, max_height, relay),
                              logger=relay.logger) as ydl:
            try:
                info = _extract(ydl, url, captions_source, language)
            except (DownloadError, ExtractorError, TooLarge) as err:  # process_ie_result: raw
                if max_bytes is not None and any(isinstance(e, TooLarge) for e in _chain(err)):
                    raise PermanentError(
                        f"download failed: the video is larger than the {_mb(max_bytes)} limit "
                        "(IGS_MAX_DOWNLOAD_MB)"
                    ) from None
                live = live_info(ydl, url) if not_started(err, key, site) else None
                if live is not None and live.get("live_status") in LIVE_STATES:
                    raise waiting(live) from None
                raise refused(err, key, site, polite) from err
        if not_live(_single(info)):
            raise waiting(_single(info))
        result = _result(info, dest_dir, url, max_bytes, relay.logger.too_large)
    except BaseException:
        # nothing is resumed (the next attempt starts clean), so a failed attempt leaves nothing
        # half-written behind; on a full disk that also gives the space back
        _remove_ours(dest_dir, created)
        raise
    fsutil.atomic_write_json(dest_dir / MANIFEST, result.to_json())
    if polite is not None:
        polite.gate.succeeded(site)
    relay.finish(result.size)
    return result


def _single(info: dict) -> dict:
    if info.get("_type") == "playlist":
        return next((e for e in info.get("entries") or [] if e), {})
    return info

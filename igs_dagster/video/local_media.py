"""Sources that skip yt-dlp: a local audio/video file, or a pasted transcript text.

They produce the same description dict as a download, so every later step treats all
sources alike.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import atomic_writer, sweep_temp_files
from igs_dagster.core.pathguard import open_media
from igs_dagster.core.settings import Settings
from igs_dagster.video.download import media_duration
from igs_dagster.video.media_tags import read_tags


def _describe(key: str, title: str, **fields: object) -> dict:
    base = {
        "video_path": None, "info_path": None, "thumbnail_path": None, "video_id": key,
        "title": title, "channel": None, "upload_date": None, "duration": 0.0, "size": 0,
        "source_url": None, "extractor": "local", "description": None, "chapters": [], "tags": [],
    }
    base.update(fields)
    return base


def import_media_file(src: Path, dest_dir: Path, *, key: str, title: str | None,
                      settings: Settings) -> dict:
    """Copy `src` into the partition folder (atomically, once) and describe it. The worker
    checks the media folders itself (core/pathguard), whatever intake let through: the file
    is opened inside them, without following links, and must have a single link."""
    src = Path(src)
    fd = open_media(src, settings)
    with os.fdopen(fd, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        sweep_temp_files(dest_dir)
        dest = dest_dir / f"media{src.suffix.lower()}"
        if not dest.is_file() or dest.stat().st_size != size:
            with atomic_writer(dest) as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
    duration = media_duration(dest)
    tags = read_tags(dest)  # a file's modification time is no publication date
    return _describe(
        key, title or tags["title"] or src.stem, video_path=str(dest), duration=duration,
        size=dest.stat().st_size, upload_date=tags["date"], channel=tags["author"],
    )


def describe_text(text_path: Path, *, key: str, title: str | None) -> dict:
    """Describe a pasted transcript stored by intake (no media, nothing to download)."""
    text_path = Path(text_path)
    if not text_path.is_file():
        raise PermanentError(f"transcript text {text_path.name} is missing from the inbox")
    return _describe(key, title or key, text_path=str(text_path), size=text_path.stat().st_size)

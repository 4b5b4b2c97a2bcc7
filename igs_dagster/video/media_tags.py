"""Title, author and date from a media file's own tags (MP4/MP3/Matroska metadata via PyAV),
for sources that have no page to read them from: direct media links and local files. A file
name or a server's Last-Modified date is no title and no publication date."""

from __future__ import annotations

import re
from pathlib import Path

import av

from igs_dagster.core.text import one_line

TITLE_KEYS = ("title",)
AUTHOR_KEYS = ("artist", "album_artist", "author", "composer")
DATE_KEYS = ("date", "creation_time", "year")


def _first(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = one_line(tags.get(key) or "")
        if value:
            return value[:300]
    return None


def _iso_date(value: str | None) -> str | None:
    """YYYY-MM-DD from `2024-05-01T...`, `20240501` or `2024-05-01`; None otherwise (a bare
    year is too vague for `published`)."""
    text = (value or "").strip()
    match = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if not match:
        return None
    year, month, day = match.groups()
    if not ("1900" <= year <= "2100" and "01" <= month <= "12" and "01" <= day <= "31"):
        return None
    return f"{year}-{month}-{day}"


def read_tags(path: Path) -> dict[str, str | None]:
    """{"title", "author", "date"} from the container's tags (None where absent/unreadable)."""
    try:
        with av.open(str(path)) as container:
            tags = {str(k).lower(): str(v) for k, v in (container.metadata or {}).items()}
    except (av.FFmpegError, OSError, ValueError):
        return {"title": None, "author": None, "date": None}
    date = _first(tags, DATE_KEYS)
    return {"title": _first(tags, TITLE_KEYS), "author": _first(tags, AUTHOR_KEYS),
            "date": _iso_date(date)}

"""The vault note's frontmatter: its keys in contract order (see video/notes.py), read
(`split_frontmatter`, dates as 'YYYY-MM-DD' strings) and written back in the same style
(`dump_frontmatter`: free text always double-quoted, known keys first)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from igs_dagster.core.errors import PermanentError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEYS = (
    "type",
    "title",
    "source",
    "source_url",
    "video_id",
    "channel",
    "published",
    "duration",
    "duration_seconds",
    "language",
    "transcript_source",
    "archive_path",
    "transcribed",
    "enriched_by",
    "tags",
)
OMIT_IF_UNKNOWN = {"source_url", "channel", "published", "duration", "duration_seconds", "language",
                   "transcript_source", "archive_path"}
ALWAYS_KEYS = tuple(k for k in _KEYS if k not in OMIT_IF_UNKNOWN)  # every note has these
_QUOTED_KEYS = {"title", "source_url", "video_id", "channel", "duration", "archive_path"}


def check_day(day: str, what: str = "day") -> str:
    if not isinstance(day, str) or not _DATE.match(day):
        raise PermanentError(f"invalid {what} {day!r}: expected YYYY-MM-DD")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise PermanentError(f"invalid {what} {day!r}: not a calendar date") from None
    return day


class _Quoted(str):
    """A string always written double-quoted (free text: titles, URLs, ids)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Quoted,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"'),
)


def _normalize(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _normalize(item) for key, item in value.items()}
    return value


def split_frontmatter(text: str) -> tuple[dict, str]:
    """Split a note into (frontmatter dict, body). Dates come back as 'YYYY-MM-DD' strings.

    Missing or invalid frontmatter -> PermanentError.
    """
    if not text.startswith("---\n"):
        raise PermanentError("note has no frontmatter (it must start with '---')")
    end = text.find("\n---\n", 3)
    if end == -1:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise PermanentError("note frontmatter is not closed with '---'")
    raw = text[4 : end + 1]
    body = text[end + 5 :]
    try:
        meta = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise PermanentError(f"note frontmatter is not valid YAML{where}") from None
    if not isinstance(meta, dict):
        raise PermanentError("note frontmatter is not a YAML mapping")
    return _normalize(meta), body


def dump_frontmatter(meta: dict) -> str:
    """Render `meta` as the note's frontmatter block ('---' ... '---\\n') in the contract's style.

    Known keys come first in contract order; other keys follow in their given order.
    `dump_frontmatter(split_frontmatter(note)[0])` reproduces a rendered note's frontmatter.
    """
    ordered: dict[str, Any] = {}
    for key in (*_KEYS, *(k for k in meta if k not in _KEYS)):
        if key not in meta:
            continue
        value = meta[key]
        if key in _QUOTED_KEYS and isinstance(value, str):
            value = _Quoted(value)
        elif isinstance(value, str) and _DATE.match(value):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                pass
        ordered[key] = value
    body = yaml.dump(
        ordered,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=1_000_000,
    )
    return f"---\n{body}---\n"

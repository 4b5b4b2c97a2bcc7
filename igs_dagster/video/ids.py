"""Turn what the user typed (YouTube URL or ID, web URL, local file) into a partition key.

The key names every file and Dagster partition of one video, so it must be stable (same
input, same key) and safe as a file name. Anything doubtful is refused here, once, with a
one-line `PermanentError`, before any step touches the network or the disk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import unreserved

MAX_INPUT = 4096
MEDIA_EXTENSIONS = frozenset(
    "3gp aac aif aiff amr avi flac flv m4a m4b m4v mka mkv mov mp3 mp4 mpeg mpg oga ogg ogv "
    "opus ts wav weba webm wma wmv".split()
)

_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_YT_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_YT_HOSTS = ("youtube.com", "youtube-nocookie.com", "youtu.be")
_YT_PREFIXES = ("www.", "m.", "music.")
_YT_PATH_KINDS = ("shorts", "embed", "live", "v", "e")
_YT_NO_SCHEME = re.compile(
    r"(?:(?:www|m|music)\.)?(?:youtube\.com|youtube-nocookie\.com|youtu\.be)/", re.IGNORECASE
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# `example.com/talk.mp4`, `example.com`, `127.0.0.1:8000/x`, `localhost:8000/x`: a web address
# typed without its scheme
_LOOKS_LIKE_HOST = re.compile(
    r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|localhost|\d{1,3}(?:\.\d{1,3}){3})"
    r"(?::\d{1,5})?(?:[/?#]|$)")


def _scheme_hint(text: str) -> str:
    """` (a web address needs http:// or https://: https://example.com/x)` for input that
    looks like one without its scheme, else ''."""
    if not _LOOKS_LIKE_HOST.match(text) or (
            "/" not in text and Path(text).suffix.lower().lstrip(".") in MEDIA_EXTENSIONS):
        return ""  # `talk.mov`: a file name
    return f" (a web address needs http:// or https:// in front: https://{text})"
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


@dataclass(frozen=True)
class SourceRef:
    """Where one video comes from, and the partition key that names it."""

    kind: Literal["youtube", "url", "file"]
    key: str
    location: str
    label: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _refuse(text: str, reason: str) -> PermanentError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return PermanentError(f"invalid source {shown!r}: {reason}")


def is_partition_key(key: str) -> bool:
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def slugify(title: str, max_len: int = 80) -> str:
    """Lowercase ASCII words joined by '-', cut to `max_len` at a word boundary where possible;
    'untitled' when nothing is left; `_` added to a device name Windows reserves (`con_`)."""
    ascii_text = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[: max(1, max_len)]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return unreserved(slug.strip("-") or "untitled")


def text_key(title: str, text: str) -> str:
    """Key for a pasted transcript; line endings and outer blanks don't change it."""
    body = text.replace("\r\n", "\n").strip()
    return f"text-{slugify(title, 40)}-{_sha(body)}"


def youtube_id(text: str) -> str | None:
    """The 11-character video ID of any YouTube URL form or a bare ID, else None."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if _YT_ID.fullmatch(text):
        return text
    if _YT_NO_SCHEME.match(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    for prefix in _YT_PREFIXES:
        host = host.removeprefix(prefix)
    if host not in _YT_HOSTS:
        return None
    segments = [s for s in parts.path.split("/") if s]
    candidate = None
    if host == "youtu.be":
        candidate = segments[0] if len(segments) == 1 else None
    elif segments == ["watch"]:
        values = parse_qs(parts.query).get("v", [])
        candidate = values[0] if len(values) == 1 else None
    elif len(segments) == 2 and segments[0] in _YT_PATH_KINDS:
        candidate = segments[1]
    return candidate if candidate and _YT_ID.fullmatch(candidate) else None


def _youtube_host(text: str) -> bool:
    """True when `text` points at a YouTube host (used to refuse channel/playlist URLs)."""
    if _YT_NO_SCHEME.match(text):
        return True
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in _YT_HOSTS)


def _normalize_url(text: str) -> str:
    """Check an http(s) URL and return it with lowercase scheme/host, no default port or fragment."""
    if any(ch.isspace() for ch in text) or "\\" in text:
        raise _refuse(text, "URL contains spaces or backslashes")
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname or ""
    except ValueError as err:
        raise _refuse(text, f"malformed URL ({err})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse(text, "URL must not contain credentials")
    if not host:
        raise _refuse(text, "URL has no host")
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            raise _refuse(text, "bad IPv6 host") from None
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _refuse(text, "bad host name") from None
        if not _HOSTNAME.fullmatch(host):
            raise _refuse(text, "bad host name")
    scheme = parts.scheme.lower()
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def _web_source(text: str) -> SourceRef:
    url = _normalize_url(text)
    parts = urlsplit(url)
    stem = Path(parts.path).stem or (parts.hostname or "")
    key = f"web-{slugify(stem, 40)}-{_sha(url)}"
    return SourceRef("url", key, url, "web")


def _file_source(text: str, fence: Callable[[Path], Path] | None = None) -> SourceRef:
    """A local media file. With `fence` (intake: the media folders, core/pathguard) the path is
    checked there first, so a path outside gets one refusal whatever exists at it; only inside
    are missing, unreadable and odd files told apart."""
    path = Path(os.path.expanduser(text))
    if fence is None and ".." in path.parts:  # a fence resolves `..` before it compares
        raise _refuse(text, "path must not contain '..'")
    hint = _scheme_hint(text)  # from the text alone, never from the disk
    if not hint and re.fullmatch(r"[A-Za-z0-9_-]+", text):
        hint = " (a YouTube video ID has exactly 11 characters)"
    if fence is not None:
        try:
            fence(path)
        except PermanentError as err:
            raise _refuse(text, f"{err}{hint}") from None
    try:
        if not path.exists():
            raise _refuse(text, f"no such file{hint}")
        resolved = path.resolve()  # symlinks and `..` folded: one key per file
        info = resolved.stat()
    except OSError as err:  # a folder on the way we may not enter, a link loop
        raise _refuse(text, f"cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(text, "not a regular file")
    if resolved.suffix.lower().lstrip(".") not in MEDIA_EXTENSIONS:
        raise _refuse(text, f"not an audio/video file extension ({resolved.suffix or 'none'})")
    if not os.access(resolved, os.R_OK):
        raise _refuse(text, "file is not readable")
    if info.st_size == 0:
        raise _refuse(text, "file is empty")
    if info.st_nlink != 1:
        raise _refuse(text, f"the file has {info.st_nlink} hard links: a file with more than one "
                            "link is refused (copy it instead)")
    key = f"file-{slugify(resolved.stem, 40)}-{_sha(str(resolved))}"
    return SourceRef("file", key, str(resolved), "file")


def _file_url_path(text: str) -> str:
    """The local path of a `file://` URL (`file:///x`, `file://localhost/x`)."""
    try:
        parts = urlsplit(text)
    except ValueError as err:
        raise _refuse(text, f"malformed URL ({err})") from None
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise _refuse(text, "a file:// URL names a path on this machine only")
    return unquote(parts.path)


def parse_source(text: str, fence: Callable[[Path], Path] | None = None) -> SourceRef:
    """Classify and validate user input; raise PermanentError (one line) when it is unusable.

    Local files (a path or a `file://` URL) must pass `fence` (intake: the media folders)
    before anything about them is looked at."""
    if not isinstance(text, str):
        raise PermanentError(f"invalid source: expected text, got {type(text).__name__}")
    raw, text = text, text.strip()
    if not text:
        raise _refuse(raw, "empty")
    if len(text) > MAX_INPUT:
        raise _refuse(text, f"longer than {MAX_INPUT} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text):
        raise _refuse(text, "contains control characters")
    scheme_match = _SCHEME.match(text)
    scheme = scheme_match.group(0)[:-1].lower() if scheme_match else None
    if scheme == "file":  # the same rule as a path: under the media folders only
        return _file_source(_file_url_path(text), fence)
    if scheme is not None and scheme not in ("http", "https"):
        hint = _scheme_hint(text) or " (use http or https)"  # `localhost:8000/x` reads as a scheme
        raise _refuse(text, f"unsupported scheme {scheme!r}{hint}")
    if scheme is not None:
        _normalize_url(text)  # credentials, host and port checks apply to YouTube URLs too
    video_id = youtube_id(text)
    if video_id is not None:
        return SourceRef(
            "youtube", video_id, f"https://www.youtube.com/watch?v={video_id}", "youtube"
        )
    if _youtube_host(text):
        raise _refuse(text, "no valid YouTube video ID (channel, playlist or malformed URL)")
    if scheme is not None:
        return _web_source(text)
    return _file_source(text, fence)


def timestamp_url(source: SourceRef | str, seconds: int) -> str | None:
    """Link that opens the source at `seconds`; None for local files."""
    seconds = max(0, int(seconds))
    if isinstance(source, SourceRef):
        kind, location = source.kind, source.location
    else:
        location = str(source).strip()
        kind = "youtube" if youtube_id(location) else "url"
        if kind == "url" and not location.lower().startswith(("http://", "https://")):
            return None
    if kind == "youtube":
        return f"https://www.youtube.com/watch?v={youtube_id(location)}&t={seconds}s"
    if kind == "url":
        return f"{location.split('#', 1)[0]}#t={seconds}"
    return None

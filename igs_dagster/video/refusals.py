"""What a failed yt-dlp call means for the user: one line with the cause and the fix.

Decided by exception type first (yt-dlp's HTTPError status, GeoRestrictedError, UserNotLive,
ExtractorError and its `expected` flag), then, for the refusals YouTube only describes in words
(which yt-dlp passes on as `ExtractorError(expected=True)`: the bot wall, age and members-only
gates, private or removed videos, a live event that has not begun), by those words. The words
are YouTube's playability reasons and yt-dlp's own texts, as in yt-dlp's YouTube extractor
(`_video.py`: `_is_agegated`'s AGE_GATE_REASONS, the "sign in" and "try again later" branches,
`raise_no_formats`) and YoutubeDL ("Requested format is not available").

yt-dlp's command-line hints ("Use --cookies-from-browser or --cookies …") name flags this
project does not have: they are cut off, and the fix names our settings instead.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import ExtractorError, GeoRestrictedError, UnsupportedError, UserNotLive

from igs_dagster.core.errors import error_chain
from igs_dagster.core.text import first_line

UPDATE_COMMAND = "uv lock --upgrade-package yt-dlp && uv sync"
COOKIES_FIX = ("set IGS_YTDLP__COOKIES_FROM_BROWSER=<browser> (firefox, chrome, ...) or "
               "IGS_YTDLP__COOKIES_FILE=<cookies.txt>")

# (kind, words in yt-dlp's or YouTube's message), checked in this order
_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rate_limited", ("try again later", "rate-limited by youtube", "too many requests")),
    ("bot_wall", ("not a bot",)),
    ("age", ("confirm your age", "age-restricted", "inappropriate", "age verification")),
    ("members", ("members-only", "members only", "join this channel")),
    ("private", ("private video", "video is private")),
    ("not_started", ("will begin", "premieres in", "premiere will begin", "live event",
                     "waiting for")),
    ("removed", ("has been removed", "no longer available", "video unavailable",
                 "video is unavailable", "has been terminated", "does not exist")),
    ("formats", ("requested format is not available", "no video formats found",
                 "only images are available")),
    ("login", ("sign in", "log in", "login", "registered users", "--cookies")),
)
_CLI_HINT = re.compile(
    r"\s*(?:\.\s*)?(?:Use --|See  https?://|Also see  https?://|It is recommended to use `-t).*$")
_PREFIX = re.compile(r"^(?:ERROR:\s*)?(?:\[[\w:.-]+\]\s*(?:[\w-]{1,64}:\s+)?)?")


@dataclass(frozen=True)
class Refusal:
    """A known reason: `kind`, whether a retry can help, the cause and what to do."""

    kind: str
    permanent: bool
    cause: str
    fix: str | None = None
    retry_after_s: float | None = None  # rate limits: the server's Retry-After, if it sent one

    def message(self) -> str:
        return f"{self.cause}: {self.fix}" if self.fix else self.cause


def clean_reason(err: BaseException | str) -> str:
    """yt-dlp's message without "ERROR: [youtube] ID: ", its CLI hints and bug-report tail."""
    text = first_line(err).split("; please report this issue")[0]
    text = re.sub(r"\s*\(caused by .*\)$", "", text)
    text = _PREFIX.sub("", text, count=1)
    text = _CLI_HINT.sub("", text).strip().rstrip(".")
    return text[:300]


def _retry_after(err: HTTPError) -> float | None:
    value = (err.response.headers.get("Retry-After") or "").strip() if err.response else ""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _by_words(text: str) -> str | None:
    lowered = text.lower().replace("’", "'")
    return next((kind for kind, words in _WORDS if any(w in lowered for w in words)), None)


def _refusal(kind: str, reason: str, key: str | None, site: str) -> Refusal:
    retry = f"then `igs retry {key}`" if key else "then try again"
    site = "YouTube" if site == "youtube" else site
    table = {
        "rate_limited": (False, f"{site} is rate limiting this machine ({reason})",
                         "wait a few minutes, then try again"),
        "bot_wall": (True, "YouTube asks to sign in to confirm you're not a bot",
                     f"{COOKIES_FIX}, {retry}"),
        "age": (True, f"the video is age-restricted ({reason})",
                f"cookies of a signed-in adult account are needed: {COOKIES_FIX}, {retry}"),
        "members": (True, f"the video is for the channel's members only ({reason})",
                    f"cookies of a member's account are needed: {COOKIES_FIX}, {retry}"),
        "private": (True, f"the video is private ({reason})",
                    "only its owner can share it; if it was shared with your account, "
                    f"{COOKIES_FIX}, {retry}"),
        "removed": (True, f"the video was removed or is unavailable ({reason})",
                    "nothing to retry"),
        "geo": (True, f"the video is not available in your country ({reason})",
                "nothing to retry from this machine"),
        "formats": (True, f"no downloadable format ({reason})",
                    f"run `igs doctor` (JS runtime, yt-dlp's age), update yt-dlp with "
                    f"`{UPDATE_COMMAND}`, {retry}"),
        "login": (True, f"the site wants a signed-in account ({reason})",
                  f"{COOKIES_FIX}, {retry}"),
        "forbidden": (True, f"access refused ({reason})",
                      f"if the video needs a signed-in account, {COOKIES_FIX}; for YouTube run "
                      f"`igs doctor`; {retry}"),
        "not_started": (False, f"not started yet ({reason})", "waiting for it"),
    }
    permanent, cause, fix = table[kind]
    return Refusal(kind, permanent, cause, fix)


def classify(err: BaseException, *, key: str | None = None,
             site: str = "the site") -> Refusal | None:
    """The known refusal behind a yt-dlp error, or None (then only its type decides: network
    trouble and 5xx are transient, other expected extractor errors permanent)."""
    errors = list(error_chain(err))
    for exc in errors:  # an HTTP status decides first
        if isinstance(exc, HTTPError):
            if exc.status == 429:
                found = _refusal("rate_limited", f"HTTP {exc.status}", key, site)
                return Refusal(found.kind, False, found.cause, found.fix, _retry_after(exc))
            if exc.status in (401, 403):
                return _refusal("forbidden", f"HTTP {exc.status}", key, site)
            return None
    if any(isinstance(exc, TransportError | OSError) for exc in errors):
        return None
    for exc in errors:
        if isinstance(exc, GeoRestrictedError):
            return _refusal("geo", clean_reason(exc), key, site)
        if isinstance(exc, UserNotLive):
            return _refusal("not_started", clean_reason(exc), key, site)
        if isinstance(exc, UnsupportedError):
            return None
    for exc in errors:
        if isinstance(exc, ExtractorError) and exc.expected:
            kind = _by_words(str(exc))
            return _refusal(kind, clean_reason(exc), key, site) if kind else None
    return None

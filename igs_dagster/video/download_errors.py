"""What a failed download raises: permanent or transient (by exception type and HTTP status),
a known refusal's cause and fix (video/refusals.py), a rate limit that pauses the site
(`RateLimited`, video/download_gate.py), or a live stream to wait for (`NotYetAvailable`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from igs_dagster.core.errors import PermanentError, error_chain
from igs_dagster.core.redact import redact
from igs_dagster.core.settings import YtdlpSettings
from igs_dagster.core.text import first_line
from igs_dagster.video import refusals
from igs_dagster.video.download_gate import DownloadGate

# HTTP statuses a retry cannot change; every other status (5xx, 429, 408, ...) is transient.
PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}
# yt-dlp extractor errors that retrying never changes (no network error underneath).
PERMANENT_TYPES = (UnsupportedError, GeoRestrictedError)
LIVE_STATES = ("is_live", "is_upcoming", "post_live")


class TransientDownloadError(RuntimeError):
    """A download failure that may succeed on retry (timeout, 5xx, network trouble)."""


class RateLimited(TransientDownloadError):
    """The site answered "too many requests": every download from it pauses `pause_s`."""

    def __init__(self, message: str, site: str, pause_s: float) -> None:
        super().__init__(message)
        self.site, self.pause_s = site, pause_s


class NotYetAvailable(PermanentError):
    """A live stream or premiere that has not started (or not ended): not a failure, try again
    at `until` (epoch seconds)."""

    def __init__(self, message: str, until: float, live_status: str | None) -> None:
        super().__init__(message)
        self.until, self.live_status = until, live_status


@dataclass
class Politeness:
    """How a download shares its site with the others (download_gate): the gate, the spacing
    between starts, the first pause after a 429, and who hears about waits."""

    gate: DownloadGate
    spacing_s: tuple[float, float] = (0.0, 0.0)
    rate_limit_pause_s: float = 300.0
    polite_sites: tuple[str, ...] = ("youtube",)
    on_wait: Callable[[float, str], None] | None = None

    @classmethod
    def from_settings(cls, cfg: YtdlpSettings, gate_dir: Path,
                      on_wait: Callable[[float, str], None] | None = None) -> Politeness:
        return cls(DownloadGate(gate_dir), (cfg.sleep_s, cfg.max_sleep_s), cfg.rate_limit_pause_s,
                   tuple(cfg.polite_sites), on_wait)


def not_live(info: dict, *, incomplete: bool = False) -> str | None:
    """yt-dlp `match_filter`: a live, upcoming or still-processing stream is not downloaded."""
    status = info.get("live_status") or ("is_live" if info.get("is_live") else None)
    return f"live_status {status}" if status in LIVE_STATES else None


def first_reason(err: BaseException | str) -> str:
    text = first_line(err).removeprefix("ERROR: ").split("; please report this issue")[0]
    return redact(re.sub(r"\s*\(caused by .*\)$", "", text)[:300])


def is_permanent(err: BaseException) -> bool:
    """Decided by exception type and HTTP status, never by phrases in the message.

    An HTTP status decides first (4xx in PERMANENT_HTTP: permanent; 5xx, 429: transient). Any
    network error underneath (refused, reset, timeout, DNS failure: yt-dlp's TransportError or
    an OSError) is transient. What yt-dlp marks as the expected, user-facing outcome of an
    extraction (`ExtractorError(expected=True)`: private, removed, unsupported URL, no
    formats) or an unsupported/geo-restricted page is permanent. Anything else is transient:
    the step's retry policy bounds it.
    """
    chain = list(error_chain(err))
    for exc in chain:
        if isinstance(exc, HTTPError):
            return exc.status in PERMANENT_HTTP
    if any(isinstance(exc, (TransportError, OSError)) for exc in chain):
        return False
    return any(
        isinstance(exc, PERMANENT_TYPES) or (isinstance(exc, ExtractorError) and exc.expected)
        for exc in chain
    )


def refused(err: BaseException, key: str | None, site: str,
            polite: Politeness | None) -> Exception:
    """The error to raise for a failed yt-dlp call: a known refusal with its fix (a rate limit
    also pauses the site), else permanent or transient by type with yt-dlp's first line."""
    refusal = refusals.classify(err, key=key, site=site)
    if refusal is not None and refusal.kind == "rate_limited":
        pause = polite.gate.pause(site, polite.rate_limit_pause_s, refusal.cause,
                                  refusal.retry_after_s) if polite else 0.0
        shown = "YouTube" if site == "youtube" else site
        fix = (f"every download from {shown} pauses {max(pause, 1) / 60:.1f} min, then retries"
               if polite else "retried later")
        return RateLimited(redact(f"download failed: {refusal.cause}: {fix}"), site, pause)
    if refusal is not None and refusal.kind != "not_started":
        text = redact(f"download failed: {refusal.message()}")
        return PermanentError(text) if refusal.permanent else TransientDownloadError(text)
    if is_permanent(err):
        return PermanentError(f"download failed: {first_reason(err)}")
    return TransientDownloadError(f"download failed: {first_reason(err)}")


def not_started(err: BaseException, key: str | None, site: str) -> bool:
    refusal = refusals.classify(err, key=key, site=site)
    return refusal is not None and refusal.kind == "not_started"


def live_info(ydl: Any, url: str) -> dict | None:
    """What yt-dlp knows of a video whose formats it refused to list (not started yet):
    extracted again with `ignore_no_formats_error`, nothing downloaded."""
    ydl.params["ignore_no_formats_error"] = True
    try:
        return ydl.extract_info(url, download=False)
    except DownloadError:
        return None
    finally:
        ydl.params["ignore_no_formats_error"] = False


def waiting(info: dict) -> NotYetAvailable:
    from igs_dagster.video.waiting import live_wait

    until, message = live_wait(info)
    return NotYetAvailable(message, until, info.get("live_status"))

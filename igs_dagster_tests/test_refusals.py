"""YouTube's refusals end in one line with the cause and the fix (issue 22): yt-dlp's own
exception classes, carrying the messages its YouTube extractor builds (`_video.py`: the
playability reason plus `_youtube_login_hint`, `raise_no_formats`, `raise_geo_restricted`; and
YoutubeDL's "Requested format is not available"), wrapped in DownloadError as YoutubeDL does."""

from __future__ import annotations

import io

import pytest
from yt_dlp import YoutubeDL
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from igs_dagster.core.errors import PermanentError
from igs_dagster.video.download_errors import (
    RateLimited,
    TransientDownloadError,
    refused,
)
from igs_dagster.video.refusals import UPDATE_COMMAND, classify

VIDEO = "dQw4w9WgXcQ"


@pytest.fixture(scope="module")
def login_hint() -> str:
    """The hint yt-dlp's YouTube extractor appends (it names yt-dlp's CLI flags)."""
    with YoutubeDL({"quiet": True}) as ydl:
        return ydl.get_info_extractor("Youtube")._youtube_login_hint


def _youtube(reason: str, **kw) -> DownloadError:
    """What YoutubeIE raises for a playability reason (raise_no_formats(reason, expected=True)),
    as YoutubeDL hands it on."""
    err = ExtractorError(reason, expected=True, video_id=VIDEO, ie="youtube", **kw)
    return DownloadError(f"ERROR: {err}", (type(err), err, None))


def _http(status: int, headers: dict | None = None) -> DownloadError:
    response = Response(io.BytesIO(b""), f"https://www.youtube.com/watch?v={VIDEO}", headers or {},
                        status=status)
    err = HTTPError(response)
    wrapped = ExtractorError("Unable to download webpage", cause=err, video_id=VIDEO, ie="youtube")
    wrapped.exc_info = (type(err), err, None)
    return DownloadError(f"ERROR: {wrapped}", (type(wrapped), wrapped, None))


COOKIES = "IGS_YTDLP__COOKIES_FROM_BROWSER"
CASES = {
    # kind: (error factory, permanent, words in the line, words never in it)
    "bot_wall": (lambda hint: _youtube(f"Sign in to confirm you’re not a bot. {hint}"), True,
                 ["confirm you're not a bot", COOKIES, "IGS_YTDLP__COOKIES_FILE",
                  f"`igs retry {VIDEO}`"]),
    "age": (lambda hint: _youtube("Sign in to confirm your age. This video may be inappropriate "
                                  f"for some users. {hint}"), True,
            ["age-restricted", "adult account", COOKIES, f"`igs retry {VIDEO}`"]),
    "members": (lambda hint: _youtube("Join this channel to get access to members-only content "
                                      "like this video, and other exclusive perks."), True,
                ["members only", "member's account", COOKIES]),
    "private": (lambda hint: _youtube("Private video. Sign in if you've been granted access to "
                                      f"this video. {hint}"), True,
                ["the video is private", "only its owner"]),
    "removed": (lambda hint: _youtube("Video unavailable. This video has been removed by the "
                                      "uploader"), True,
                ["removed or is unavailable", "nothing to retry"]),
    "geo": (lambda hint: DownloadError("ERROR: geo", (GeoRestrictedError, GeoRestrictedError(
        "The uploader has not made this video available in your country", countries=["US"]),
        None)), True, ["not available in your country"]),
    "formats": (lambda hint: _youtube("Requested format is not available. Use --list-formats for "
                                      "a list of available formats"), True,
                ["no downloadable format", "igs doctor", UPDATE_COMMAND]),
    "forbidden": (lambda hint: _http(403), True, ["access refused (HTTP 403)", COOKIES,
                                                  "igs doctor"]),
    "rate_limited": (lambda hint: _http(429, {"Retry-After": "120"}), False,
                     ["rate limiting", "HTTP 429"]),
    "try_again_later": (lambda hint: _youtube(
        "This content isn't available, try again later. The current session has been "
        "rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a "
        "delay between video requests to avoid exceeding the rate limit."), False,
        ["rate limiting"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_refusal_is_one_line_with_cause_and_fix(case: str, login_hint: str):
    make, permanent, words = CASES[case]
    err = refused(make(login_hint), VIDEO, "youtube", None)
    text = str(err)
    assert isinstance(err, PermanentError) is permanent
    assert isinstance(err, TransientDownloadError) is (not permanent)
    assert text.startswith("download failed: ") and "\n" not in text and len(text) < 600
    for word in words:
        assert word in text, (word, text)
    # yt-dlp's command-line hints name flags this project has not got
    assert "--cookies" not in text and "--list-formats" not in text and "wiki" not in text


def test_rate_limit_carries_the_servers_retry_after():
    refusal = classify(_http(429, {"Retry-After": "120"}), key=VIDEO, site="youtube")
    assert refusal.kind == "rate_limited" and refusal.retry_after_s == 120.0
    assert isinstance(refused(_http(429), VIDEO, "youtube", None), RateLimited)


@pytest.mark.parametrize("reason", [
    "This live event will begin in 3 hours.",
    "Premieres in 2 hours",
    "Premiere will begin shortly",
])
def test_a_stream_that_has_not_started_is_recognised(reason: str):
    assert classify(_youtube(reason), key=VIDEO).kind == "not_started"


def test_network_trouble_is_left_to_the_type_rules():
    """No refusal is read into a timeout or a 5xx: they stay transient by type."""
    from yt_dlp.networking.exceptions import TransportError

    timeout = TransportError("timed out", cause=TimeoutError("timed out"))
    assert classify(DownloadError("ERROR: timed out", (TransportError, timeout, None))) is None
    assert classify(_http(503)) is None
    assert isinstance(refused(_http(503), VIDEO, "youtube", None), TransientDownloadError)

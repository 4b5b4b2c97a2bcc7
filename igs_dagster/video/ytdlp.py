"""The one place yt-dlp is opened: every call (a download, a playlist or channel expansion, a
followed channel's look-up, `igs doctor`) gets the same base options from `base_options` and
opens yt-dlp through `open_ytdlp`.

The base options carry the JavaScript runtime YouTube's challenges need (the `deno` binary the
`yt-dlp[deno]` extra puts beside Python, or the one `IGS_YTDLP__JS_RUNTIME` names), the
cookies (`IGS_YTDLP__COOKIES_FILE` / `__COOKIES_FROM_BROWSER`), the pause between the requests
of one extraction, and a logger that keeps yt-dlp's output off stderr.

yt-dlp writes its cookie jar back to the file it was given when it closes, so it never gets the
user's file: `open_ytdlp` hands it a private copy (0600, in a 0700 folder) and deletes it after.
Cookie values are registered as secrets (core/redact), so they are redacted from every log line
and error text that passes `redact`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from typing import Any

from igs_dagster.core import netguard, redact
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import YtdlpSettings, load_settings
from igs_dagster.core.text import one_line

log = logging.getLogger(__name__)

COOKIES_FILE_ENV = "IGS_YTDLP__COOKIES_FILE"
COOKIES_BROWSER_ENV = "IGS_YTDLP__COOKIES_FROM_BROWSER"
RUNTIME_ENV = "IGS_YTDLP__JS_RUNTIME"


class YtdlpLogger:
    """Sends yt-dlp's messages to Python logging below WARNING (redacted), so nothing reaches
    stderr; its errors surface as the exception the caller raises. Remembers what the caller
    needs to know afterwards (a file skipped for its declared size)."""

    def __init__(self, keep: list[str] | None = None) -> None:
        self.too_large = False  # yt-dlp skipped a file whose declared size is over `max_filesize`
        self.keep = keep  # a list to collect the (redacted) messages in, for tests and probes

    def debug(self, msg: str) -> None:
        text = redact.redact(str(msg))
        if "larger than max-filesize" in text:
            self.too_large = True
        if self.keep is not None:
            self.keep.append(text)
        log.debug("yt-dlp: %s", text)

    def warning(self, msg: str) -> None:
        text = redact.redact(str(msg))
        if self.keep is not None:
            self.keep.append(text)
        log.info("yt-dlp: %s", text)

    info = error = debug


def _parsed(args: list[str], setting: str) -> dict[str, Any]:
    """yt-dlp's own command-line parser for the options it parses itself (runtime, browser)."""
    import optparse

    import yt_dlp

    try:
        return yt_dlp.parse_options(["--ignore-config", *args]).ydl_opts
    except (optparse.OptParseError, ValueError, SystemExit) as err:
        reason = str(err).strip().splitlines()[-1].split("error: ", 1)[-1] if str(err) else "invalid"
        raise PermanentError(f"invalid setting {setting}: {one_line(reason, 200)}") from None


def js_runtimes(cfg: YtdlpSettings) -> dict[str, dict]:
    """yt-dlp's `js_runtimes`: deno (yt-dlp's default, bundled) plus the configured runtime,
    as `--js-runtimes NAME[:PATH]` would give."""
    return _parsed(["--js-runtimes", cfg.js_runtime], RUNTIME_ENV)["js_runtimes"]


def cookies_from_browser(cfg: YtdlpSettings) -> tuple | None:
    """yt-dlp's `cookiesfrombrowser` tuple (browser, profile, keyring, container), or None."""
    if not cfg.cookies_from_browser:
        return None
    return _parsed(["--cookies-from-browser", cfg.cookies_from_browser],
                   COOKIES_BROWSER_ENV)["cookiesfrombrowser"]


def base_options(cfg: YtdlpSettings, *, cookiefile: str | None = None,
                 logger: YtdlpLogger | None = None) -> dict[str, Any]:
    """The options every yt-dlp call starts from; callers add what their call needs."""
    options: dict[str, Any] = {
        "logger": logger or YtdlpLogger(),
        "quiet": True,
        "noprogress": True,
        "color": "no_color",
        "cachedir": False,
        "socket_timeout": 30,
        "js_runtimes": js_runtimes(cfg),
        "sleep_interval_requests": cfg.sleep_requests_s or None,
    }
    if cookiefile:
        options["cookiefile"] = cookiefile
    browser = cookies_from_browser(cfg)
    if browser:
        options["cookiesfrombrowser"] = browser
    return options


def cookies_problem(cfg: YtdlpSettings) -> str | None:
    """Why the configured cookies file cannot be used, or None (no file set, or readable)."""
    path = cfg.cookies_file
    if path is None:
        return None
    if not path.is_file():
        return f"{COOKIES_FILE_ENV}={path}: no such file"
    if not os.access(path, os.R_OK):
        return f"{COOKIES_FILE_ENV}={path}: not readable"
    return None


@contextmanager
def private_cookies(cfg: YtdlpSettings) -> Iterator[str | None]:
    """A private copy of the configured cookies file for one yt-dlp session (None without
    one); deleted afterwards, whatever yt-dlp wrote into it."""
    problem = cookies_problem(cfg)
    if problem:
        raise PermanentError(problem)
    if cfg.cookies_file is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="igs-cookies-")  # 0700
    copy = Path(folder) / "cookies.txt"
    try:
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, open(cfg.cookies_file, "rb") as src:
            shutil.copyfileobj(src, out)
        yield str(copy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def register_cookie_values(jar: CookieJar | None) -> int:
    """Every cookie value in `jar` becomes a secret `redact` hides; returns how many."""
    count = 0
    for cookie in jar or []:
        if isinstance(cookie, Cookie) and cookie.value:
            redact.register_secret("cookie", cookie.value)
            count += 1
    return count


def settings_or_default(cfg: YtdlpSettings | None) -> YtdlpSettings:
    """The yt-dlp settings given, else those of the environment / config file."""
    return cfg if cfg is not None else load_settings().ytdlp


@contextmanager
def open_ytdlp(cfg: YtdlpSettings | None, extra: dict[str, Any] | None = None, *,
               logger: YtdlpLogger | None = None) -> Iterator[Any]:
    """A `YoutubeDL` with the base options plus `extra` (the call's own options win), closed
    and its private cookie copy removed on exit."""
    from yt_dlp import YoutubeDL

    cfg = settings_or_default(cfg)
    with netguard.fence(), private_cookies(cfg) as cookiefile:
        # every fetch in this process and thread, through the address fence (core/netguard)
        options = netguard.ytdlp_options(
            {**base_options(cfg, cookiefile=cookiefile, logger=logger), **(extra or {})})
        try:
            ydl = YoutubeDL(options)
        except Exception as err:  # noqa: BLE001 - a browser's cookie store it cannot read, ...
            raise PermanentError(
                f"yt-dlp could not start: {one_line(redact.redact(str(err)), 200)}"
            ) from None
        with ydl:
            try:
                jar = ydl.cookiejar  # loaded here: a browser's store is read now
            except Exception as err:  # noqa: BLE001 - locked, encrypted or missing browser profile
                raise PermanentError(
                    f"cannot read cookies ({COOKIES_BROWSER_ENV}={cfg.cookies_from_browser}): "
                    f"{one_line(redact.redact(str(err)), 200)}"
                ) from None
            register_cookie_values(jar)
            yield ydl

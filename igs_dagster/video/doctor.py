"""What a video's way to a note depends on, checked without downloading anything: yt-dlp and its
age, the JavaScript runtime and the EJS challenge scripts YouTube needs, ffmpeg, the cookies,
the archive target (host key verified), the transcription model, the agent CLIs and free space.

Each check says ok, warn or fail, with the fix in words. `fail` means a video sent now would
fail; `warn` that it may come out degraded or that something needs attention soon. `igs doctor`
(cli/doctor.py) adds the daemon and the webserver and prints them; `igs status` shows a summary.
Nothing here prints or logs a cookie: only whether the source is there, readable and how old.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings, YtdlpSettings
from igs_dagster.core.text import one_line

STALE_DAYS = 60
UPDATE_HINT = "YouTube changes often; update with: uv lock --upgrade-package yt-dlp && uv sync"
OLD_COOKIES_DAYS = 30
MIN_DATA_FREE = 1 << 30  # 1 GiB: less and a download may fill the disk
MIN_VAULT_FREE = 50 << 20


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def release_date(version: str) -> date | None:
    """yt-dlp's versions are release dates: 2026.10.26(.1) -> 2026-10-26."""
    match = re.match(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})", version or "")
    try:
        return date(*(int(g) for g in match.groups())) if match else None
    except ValueError:
        return None


def ytdlp_version(today: date | None = None) -> Check:
    version = _version("yt-dlp")
    if version is None:
        return Check("yt-dlp", "fail", "not installed", "uv sync")
    released = release_date(version)
    if released is None:
        return Check("yt-dlp", "ok", version)
    age = ((today or date.today()) - released).days
    if age > STALE_DAYS:
        return Check("yt-dlp", "warn", f"{version}, {age} days old", UPDATE_HINT)
    return Check("yt-dlp", "ok", f"{version}, {age} days old")


def js_runtime(cfg: YtdlpSettings) -> Check:
    """The JS runtimes yt-dlp would use with our options, found and supported or not."""
    from yt_dlp import YoutubeDL

    from igs_dagster.video import ytdlp

    try:
        options = ytdlp.base_options(cfg.model_copy(update={"cookies_from_browser": None}))
    except PermanentError as err:
        return Check("JS runtime", "fail", str(err), "fix IGS_YTDLP__JS_RUNTIME (deno, node, bun, quickjs[:PATH])")
    with YoutubeDL(options) as ydl:
        runtimes = dict(ydl._js_runtimes)  # yt-dlp's own lookup: scripts folder, then PATH
    usable, other = [], []
    for name, runtime in runtimes.items():
        info = runtime.info if runtime is not None else None
        if info is None:
            other.append(f"{name} not found")
        elif not info.supported:
            other.append(f"{info.name} {info.version} unsupported ({info.path})")
        else:
            usable.append(f"{info.name} {info.version} ({info.path})")
    if not usable:
        return Check("JS runtime", "fail", "; ".join(other) or "none enabled",
                     "YouTube downloads miss formats or fail: `uv sync` installs deno "
                     "(yt-dlp[deno]), or set IGS_YTDLP__JS_RUNTIME=node:/path/to/node (>= 22)")
    configured = cfg.js_runtime.split(":", 1)[0].lower()
    if configured != "deno" and not any(u.startswith(configured) for u in usable):
        return Check("JS runtime", "warn", "; ".join(usable + other),
                     f"{configured} is not usable (IGS_YTDLP__JS_RUNTIME); the others are used")
    return Check("JS runtime", "ok", "; ".join(usable + other))


def ejs_scripts() -> Check:
    """yt-dlp-ejs, the challenge solver scripts the runtime runs, in the version yt-dlp wants."""
    version = _version("yt-dlp-ejs")
    if version is None:
        return Check("yt-dlp-ejs", "fail", "not installed",
                     "YouTube's challenges cannot be solved: `uv sync` (yt-dlp[default])")
    from yt_dlp.extractor.youtube.jsc._builtin import vendor

    wanted = vendor.VERSION
    if version.split(".")[:2] != wanted.split(".")[:2]:
        return Check("yt-dlp-ejs", "warn", f"{version}, yt-dlp expects {wanted}",
                     "uv sync (the lock pins the pair yt-dlp wants)")
    return Check("yt-dlp-ejs", "ok", version)


def ffmpeg() -> Check:
    from igs_dagster.video.download import ffmpeg_location

    path = ffmpeg_location()
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("ffmpeg", "fail", f"{path}: {one_line(err, 120)}",
                     "install ffmpeg, or `uv sync` (imageio-ffmpeg)")
    found = re.search(r"ffmpeg version (\S+)", out)
    return Check("ffmpeg", "ok", f"{found.group(1) if found else '?'} ({path})")


def _age_days(path: Path) -> float:
    return (time.time() - path.stat().st_mtime) / 86400


def cookies(cfg: YtdlpSettings, *, read_browser: bool = True) -> Check:
    """Where yt-dlp's cookies come from: present, readable, how old (never their values)."""
    from igs_dagster.video import ytdlp

    if cfg.cookies_file is None and not cfg.cookies_from_browser:
        return Check("cookies", "ok", "none set (needed only when YouTube asks to sign in)",
                     "")
    problem = ytdlp.cookies_problem(cfg)
    if problem:
        return Check("cookies", "fail", problem, "fix or unset IGS_YTDLP__COOKIES_FILE")
    parts, status, fix = [], "ok", ""
    if cfg.cookies_file is not None:
        age = _age_days(cfg.cookies_file)
        parts.append(f"file {cfg.cookies_file}, readable, {age:.0f} days old")
        if age > OLD_COOKIES_DAYS:
            status, fix = "warn", "old cookies stop working: export them again from a browser"
    if cfg.cookies_from_browser:
        parts.append(f"browser {cfg.cookies_from_browser}")
    if read_browser:
        try:
            with ytdlp.open_ytdlp(cfg) as ydl:
                jar = list(ydl.cookiejar)
        except PermanentError as err:
            return Check("cookies", "fail", str(err), "fix IGS_YTDLP__COOKIES_* (see README)")
        youtube = sum(1 for c in jar if c.domain.lstrip(".").endswith("youtube.com"))
        parts.append(f"{len(jar)} cookies, {youtube} for youtube.com")
        if not youtube:
            status, fix = "warn", "no youtube.com cookies: sign in to YouTube in that browser and export again"
    return Check("cookies", status, "; ".join(parts), fix)


def archive_target(settings: Settings, *, connect: bool = True) -> Check:
    from igs_dagster.video.archive import make_archive
    from igs_dagster.video.archive_sftp import SftpArchive

    target = make_archive(settings)
    if isinstance(target, SftpArchive):
        where = target.location("YYYY", "slug").rsplit("/YYYY", 1)[0]
        if not connect:
            return Check("archive", "ok", f"{where} (not contacted)")
        target.timeout = 5
        try:
            target.probe()
        except Exception as err:  # noqa: BLE001 - unreachable, refused login, unknown host key
            return Check("archive", "fail", f"{where}: {one_line(err, 200)}",
                         "start the NAS / fix IGS_ARCHIVE__SFTP_* (host keys: IGS_ARCHIVE__SFTP_KNOWN_HOSTS)")
        return Check("archive", "ok", f"{where}: connected, host key verified")
    return _writable("archive", settings.archive_dir, "IGS_ARCHIVE__LOCAL_DIR")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(name: str, folder: Path, setting: str) -> Check:
    base = _existing(folder)
    if not os.access(base, os.W_OK):
        return Check(name, "fail", f"{folder}: not writable", f"fix the permissions or {setting}")
    return Check(name, "ok", f"{folder} (local folder)")


def transcription_model(settings: Settings) -> Check:
    from igs_dagster.video import whisper_backends, whisper_models

    cfg = settings.transcriber
    source = f"; transcript source {cfg.source}" if cfg.source != "whisper" else ""
    try:
        backend = whisper_backends.resolve_backend(cfg.backend)
        packaged = whisper_models.PACKAGED.get(cfg.model)
        if packaged is not None and backend == "faster-whisper":
            whisper_models.package_folders(packaged)  # installed? (joined on first use)
            return Check("model", "ok", f"{cfg.model} (faster-whisper, packaged){source}")
        model = whisper_backends.resolve_model(cfg.model, backend, cfg.models_dir)
    except PermanentError as err:
        return Check("model", "fail", str(err), "fix IGS_TRANSCRIBER__MODEL / __BACKEND")
    shown = "tiny.en (bundled)" if cfg.model == "bundled" else model
    where = "" if Path(model).exists() else " (downloaded on first use)"
    return Check("model", "ok", f"{shown}, {backend}{where}{source}")


def agents(settings: Settings) -> Check:
    from igs_dagster.core.agent_runner import DEFAULT_COMMANDS, _resolve_executable, agent_command

    found, missing = [], []
    for tool in DEFAULT_COMMANDS:
        try:
            path = _resolve_executable(tool, agent_command(tool, settings.agent)[0], os.environ)
            found.append(f"{tool} ({path})")
        except PermanentError:
            missing.append(tool)
    chosen = settings.agent.tool
    detail = "; ".join([*found, *(f"{t} not found" for t in missing)])
    if chosen != "none" and chosen in missing:
        return Check("agents", "fail", f"IGS_AGENT__TOOL={chosen} not found; {detail}",
                     f"install {chosen} or set IGS_AGENT__{chosen.upper()}_COMMAND")
    return Check("agents", "ok", f"enricher {chosen if chosen != 'none' else 'built-in'}; {detail}")


def free_space(name: str, folder: Path, low: int, setting: str) -> Check:
    free = shutil.disk_usage(_existing(folder)).free
    detail = f"{free / (1 << 30):.1f} GiB free in {folder}"
    if free < low:
        return Check(name, "fail", detail, f"free some space or move {setting}")
    return Check(name, "ok", detail)


def video_checks(settings: Settings, *, quick: bool = False,
                 today: date | None = None) -> list[Check]:
    """Every check of the video pipeline, in order; `quick` leaves out what talks to other
    machines or a browser's cookie store (for `igs status`)."""
    cfg = settings.ytdlp
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("yt-dlp", lambda: ytdlp_version(today)),
        ("JS runtime", lambda: js_runtime(cfg)),
        ("yt-dlp-ejs", ejs_scripts),
        ("ffmpeg", ffmpeg),
        ("cookies", lambda: cookies(cfg, read_browser=not quick)),
        ("archive", lambda: archive_target(settings, connect=not quick)),
        ("model", lambda: transcription_model(settings)),
        ("agents", lambda: agents(settings)),
        ("data folder", lambda: free_space("data folder", settings.data_dir, MIN_DATA_FREE,
                                           "IGS_DATA_DIR")),
        ("vault", lambda: free_space("vault", settings.vault_dir, MIN_VAULT_FREE, "IGS_VAULT_DIR")),
    ]
    return [guarded(name, step) for name, step in steps]


def guarded(name: str, step: Callable[[], Check]) -> Check:
    """The step's result; a check that breaks is itself a finding (fail), never a traceback."""
    try:
        return step()
    except Exception as err:  # noqa: BLE001
        return Check(name, "fail", f"check failed: {type(err).__name__}: {one_line(err, 200)}")

"""download: real yt-dlp against a loopback server; bad sources fail once and leave nothing."""

from __future__ import annotations

import http.server
import io
import json
import os
import random
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg
import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from igs_dagster.core.errors import PermanentError
from igs_dagster.video.download import (
    DownloadProgress,
    DownloadResult,
    TransientDownloadError,
    _is_permanent,
    download_video,
    ffmpeg_location,
    media_duration,
)
from igs_dagster_tests.conftest import SAMPLE_MP4, MediaServer

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SAMPLE_SECONDS = 11.0  # the sample: 11 s of video and speech audio


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, args)], check=True)  # noqa: S603


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, sample_mp4: Path) -> dict[str, Path]:
    """Media made from the sample: no audio track, random bytes, and a DASH (split) version."""
    root = tmp_path_factory.mktemp("made")
    _ffmpeg("-i", sample_mp4, "-c", "copy", "-an", root / "noaudio.mp4")
    (root / "random.mp4").write_bytes(random.Random(7).randbytes(64 * 1024))  # same every run
    dash = root / "dash"
    dash.mkdir()
    _ffmpeg(
        "-i", sample_mp4, "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "dash",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a", dash / "manifest.mpd",
    )  # fmt: skip
    return {"noaudio": root / "noaudio.mp4", "random": root / "random.mp4", "dash": dash}


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME/XDG cache, to prove yt-dlp writes nothing outside dest_dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    return home


def _serve_copy(media_server: MediaServer, src: Path, suffix: str = ".mp4") -> str:
    return media_server.add(src, f"{uuid.uuid4().hex}{suffix}")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_download_served_mp4(
    media_server: MediaServer,
    sample_mp4: Path,
    tmp_path: Path,
    isolated_home: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = _serve_copy(media_server, sample_mp4)
    dest = tmp_path / "media" / "web-key"
    progress: list[DownloadProgress] = []

    result = download_video(url, dest, on_progress=progress.append)

    assert result.video_path == dest / "video.mp4"
    assert result.size == sample_mp4.stat().st_size == result.video_path.stat().st_size
    assert result.video_id == url.rsplit("/", 1)[1].removesuffix(".mp4")
    # a direct link's title comes from the media's own tags, not the file name; no date in
    # the tags: none (the server's Last-Modified is not when it was published)
    assert result.title == "JFK inaugural address (excerpt)"
    assert result.duration == pytest.approx(SAMPLE_SECONDS, abs=0.2)  # direct links: from media
    assert result.extractor == "generic" and result.source_url == url
    assert result.thumbnail_path is None and result.chapters == [] and result.tags == []
    assert result.upload_date is None and result.channel is None
    assert json.loads(result.info_path.read_text())["webpage_url"] == url
    assert json.loads((dest / "download.json").read_text()) == result.to_json()
    assert _files(tmp_path) == [
        "home", "media", "media/web-key", "media/web-key/download.json",
        "media/web-key/video.info.json", "media/web-key/video.mp4",
    ]  # fmt: skip
    percents = [p.percent for p in progress]
    assert percents[-1] == 100.0 and len(percents) >= 2
    assert all(0 <= p <= 100 for p in percents) and percents == sorted(percents)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_second_call_uses_record_without_network(
    media_server: MediaServer, sample_mp4: Path, tmp_path: Path
) -> None:
    url = _serve_copy(media_server, sample_mp4)
    first = download_video(url, tmp_path / "dl")
    (media_server.root / url.rsplit("/", 1)[1]).unlink()  # any request would now get a 404
    mtime = first.video_path.stat().st_mtime_ns

    again = download_video(url, tmp_path / "dl")
    assert again == first
    assert first.video_path.stat().st_mtime_ns == mtime
    # a closed port proves it too: the record answers before any connection is tried
    assert download_video(f"http://127.0.0.1:{_closed_port()}/x.mp4", tmp_path / "dl") == first


def test_damaged_record_downloads_again(
    media_server: MediaServer, sample_mp4: Path, tmp_path: Path
) -> None:
    url = _serve_copy(media_server, sample_mp4)
    first = download_video(url, tmp_path / "dl")
    first.video_path.write_bytes(b"half")
    (tmp_path / "dl" / ".igs-tmp-leftover").write_bytes(b"x")
    (tmp_path / "dl" / "video.mp4.part").write_bytes(b"x")
    again = download_video(url, tmp_path / "dl")
    assert again.size == first.size == again.video_path.stat().st_size
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        "download.json", "video.info.json", "video.mp4",
    ]  # fmt: skip


def test_split_formats_are_merged_with_ffmpeg(
    media_server: MediaServer, made: dict[str, Path], tmp_path: Path
) -> None:
    name = uuid.uuid4().hex
    for part in made["dash"].iterdir():
        (media_server.root / name).mkdir(exist_ok=True)
        media_server.add(part, f"{name}/{part.name}")
    progress: list[DownloadProgress] = []
    result = download_video(
        media_server.url(f"{name}/manifest.mpd"), tmp_path / "dl", on_progress=progress.append
    )
    assert result.video_path.name == "video.mp4"
    assert result.duration == pytest.approx(SAMPLE_SECONDS, abs=0.3)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        "download.json", "video.info.json", "video.mp4",
    ]  # fmt: skip
    percents = [p.percent for p in progress if p.percent is not None]
    assert percents == sorted(percents) and percents[-1] == 100.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", ["404", "html page", "random bytes", "no audio"])
def test_permanent_failures_leave_nothing(
    case: str,
    media_server: MediaServer,
    made: dict[str, Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = {
        "404": lambda: media_server.url("missing.mp4"),
        "html page": lambda: media_server.url("page.html"),
        "random bytes": lambda: _serve_copy(media_server, made["random"]),
        "no audio": lambda: _serve_copy(media_server, made["noaudio"]),
    }[case]()
    dest = tmp_path / "media" / "key"
    with pytest.raises(PermanentError) as err:
        download_video(url, dest)
    message = str(err.value)
    assert message.startswith("download failed: ") and "\n" not in message
    assert not dest.exists()
    assert _files(tmp_path) in ([], ["media"])
    assert capfd.readouterr() == ("", "")


def test_permanent_failure_keeps_foreign_files(media_server: MediaServer, tmp_path: Path) -> None:
    dest = tmp_path / "key"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    (dest / "video.info.json").write_text("{}")  # leftover of an earlier try: ours, removed
    with pytest.raises(PermanentError):
        download_video(media_server.url("page.html"), dest)
    assert _files(tmp_path) == ["key", "key/notes.txt"]


def _status_handler(status: int) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


class _Reset(http.server.BaseHTTPRequestHandler):
    """Reads the request, then resets the connection (SO_LINGER 0: RST, not FIN)."""

    def do_GET(self) -> None:
        import struct

        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video.mp4"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _refused() -> Iterator[str]:
    yield f"http://127.0.0.1:{_closed_port()}/video.mp4"


@pytest.mark.parametrize(("case", "expected"), [
    ("refused", "refused"), ("reset", "reset"), ("503", "503"), ("429", "429"), ("500", "500"),
])
def test_network_and_server_errors_are_transient(
    case: str, expected: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Real loopback failures: a host briefly down or overloaded is retried, not given up."""
    server = {
        "refused": _refused, "reset": lambda: _serving(_Reset),
        "503": lambda: _serving(_status_handler(503)), "429": lambda: _serving(_status_handler(429)),
        "500": lambda: _serving(_status_handler(500)),
    }[case]
    dest = tmp_path / "dl"
    with server() as url, pytest.raises(TransientDownloadError) as err:
        download_video(url, dest)
    assert not isinstance(err.value, PermanentError)
    assert expected in str(err.value).lower() and "\n" not in str(err.value)
    assert not dest.exists()
    assert capfd.readouterr() == ("", "")


def test_permanent_http_status_on_loopback(tmp_path: Path) -> None:
    with _serving(_status_handler(410)) as url, pytest.raises(PermanentError, match="410"):
        download_video(url, tmp_path / "dl")


def _http_error(status: int) -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), "https://example.com/v", {}, status=status))


def _wrapped(exc: BaseException) -> DownloadError:
    return DownloadError(f"ERROR: {exc}", (type(exc), exc, None))


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (_http_error(404), True),
        (_http_error(403), True),
        (_http_error(410), True),
        (_http_error(500), False),
        (_http_error(503), False),
        (_http_error(429), False),
        (TransportError("timed out", cause=TimeoutError("timed out")), False),
        (TransportError("Connection reset by peer"), False),
        (TransportError("[Errno 111] Connection refused", cause=ConnectionRefusedError(111, "x")),
         False),
        (TransportError("name resolution", cause=socket.gaierror(-2, "Name or service not known")),
         False),
        (ExtractorError("Unable to download webpage", cause=TransportError("timed out")), False),
        # phrases in a message decide nothing: only the type (and yt-dlp's `expected`) does
        (ExtractorError("HTTP 503 while reading: this video is not available (copyright)"), False),
        (TransportError("is not available: copyright"), False),
        (
            ExtractorError("Private video. Sign in if you've been granted access", expected=True),
            True,
        ),
        (ExtractorError("Video unavailable. This video has been removed", expected=True), True),
        (ExtractorError("Sign in to confirm your age. This video may be inappropriate",
                        expected=True), True),
        (ExtractorError("Join this channel to get access to members-only content",
                        expected=True), True),
        (
            GeoRestrictedError("The uploader has not made this video available in your country"),
            True,
        ),
        (ExtractorError("Sign in to confirm you're not a bot"), False),
        (ExtractorError("Unexpected response while extracting"), False),
    ],
)
def test_error_classification(exc: BaseException, permanent: bool) -> None:
    assert _is_permanent(_wrapped(exc)) is permanent


def test_invalid_url_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="download failed: .*not a valid URL"):
        download_video("not a url", tmp_path / "dl")
    assert list(tmp_path.iterdir()) == []


def test_untagged_direct_link_keeps_its_file_name_tags_give_author_and_date(
    media_server: MediaServer, tmp_path: Path
) -> None:
    plain, tagged = tmp_path / "plain-talk.mp4", tmp_path / "tagged.mp4"
    _ffmpeg("-i", SAMPLE_MP4, "-c", "copy", "-map_metadata", "-1", plain)
    _ffmpeg("-i", SAMPLE_MP4, "-c", "copy", "-metadata", "artist=J. F. Kennedy",
            "-metadata", "date=1961-01-20", tagged)
    result = download_video(media_server.add(plain, "plain-talk.mp4"), tmp_path / "a")
    assert result.title == "plain-talk" and result.upload_date is None
    result = download_video(media_server.add(tagged, "tagged.mp4"), tmp_path / "b")
    assert (result.title, result.channel, result.upload_date) == (
        "JFK inaugural address (excerpt)", "J. F. Kennedy", "1961-01-20")


def test_media_duration(sample_mp4: Path, jfk_mp3: Path, made: dict[str, Path]) -> None:
    assert media_duration(sample_mp4) == pytest.approx(SAMPLE_SECONDS, abs=0.1)
    assert media_duration(made["noaudio"]) == pytest.approx(SAMPLE_SECONDS, abs=0.1)
    assert 10 < media_duration(jfk_mp3) < 12
    with pytest.raises(PermanentError, match="unreadable media random.mp4"):
        media_duration(made["random"])
    with pytest.raises(PermanentError, match="unreadable media"):
        media_duration(made["random"].parent / "absent.mp4")


def test_ffmpeg_location_is_executable() -> None:
    assert os.access(ffmpeg_location(), os.X_OK)


def test_result_json_round_trip(tmp_path: Path) -> None:
    result = DownloadResult(
        video_path=tmp_path / "video.mp4", info_path=tmp_path / "video.info.json",
        thumbnail_path=None, video_id="abc", title="T", channel=None, upload_date="2024-01-02",
        duration=1.5, size=3, source_url="https://example.com/a.mp4", extractor="generic",
        description=None, chapters=[{"start_time": 0.0, "title": "x"}], tags=["a"],
    )  # fmt: skip
    data = json.loads(json.dumps(result.to_json()))
    assert data["video_path"] == str(tmp_path / "video.mp4")
    assert DownloadResult.from_json(data, tmp_path) == result


class _CutMidway(http.server.BaseHTTPRequestHandler):
    """Promises the whole sample mp4, sends 64 KB of it, then hangs up (every attempt)."""

    def do_GET(self) -> None:
        body = SAMPLE_MP4.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: 64 * 1024])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_cut_transfer_is_transient_and_leaves_nothing(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutMidway)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    dest = tmp_path / "media" / "cut-key"
    try:
        with pytest.raises(TransientDownloadError) as err:
            download_video(f"http://127.0.0.1:{server.server_address[1]}/talk.mp4", dest)
    finally:
        server.shutdown()
        server.server_close()
    assert str(err.value).startswith("download failed:") and "\n" not in str(err.value)
    # no .part or .ytdl file is kept: the next attempt starts clean (and a full disk gets its
    # space back); the folder the attempt created is gone too
    assert _files(tmp_path) == ["media"]

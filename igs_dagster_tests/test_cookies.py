"""Cookies reach every yt-dlp call (issue 22): a loopback server that answers 403 unless the
request carries the cookie from the user's cookies.txt. Without the setting the video fails with
the cookies hint (shown by every display: the step's failure, `igs videos`, the system log);
with it the download and a playlist expansion work, the user's file is never written, yt-dlp's
private copy is gone afterwards, and the cookie's value appears in no log line or error."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.core.settings import YtdlpSettings, load_settings
from igs_dagster.video.download import download_video
from igs_dagster.video.feeds import FeedError, read_playlist
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import handed
from igs_dagster_tests.gateserver import GateServer

SECRET = "s3cr3t-session-4f9a2c"  # what must never be logged


@pytest.fixture
def guarded(tmp_path: Path):
    """The sample behind a cookie wall, and a cookies.txt that opens it (read-only to us)."""
    with GateServer(tmp_path / "served") as server:
        server.cookie = ("igs_session", SECRET)
        url = server.add(SAMPLE_MP4, "members-talk.mp4")
        server.add(SAMPLE_MP4, "second-talk.mp4")
        page = server.write("channel.html", (
            "<html><body><video src='members-talk.mp4'></video>"
            "<video src='second-talk.mp4'></video></body></html>"))
        jar = tmp_path / "cookies.txt"
        jar.write_text("# Netscape HTTP Cookie File\n"
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\tigs_session\t{SECRET}\n")
        jar.chmod(0o400)
        yield server, url, page, jar


def _copies() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("igs-cookies-")}


def test_cookies_file_opens_the_wall_and_stays_untouched(guarded, tmp_path: Path, caplog,
                                                         monkeypatch: pytest.MonkeyPatch):
    server, url, page, jar = guarded
    caplog.set_level(logging.DEBUG)
    before, copies = (jar.read_bytes(), jar.stat().st_mtime_ns), _copies()

    with pytest.raises(PermanentError) as refused:
        download_video(url, tmp_path / "without", key="web-members-talk")
    message = str(refused.value)
    assert "access refused (HTTP 403)" in message and "IGS_YTDLP__COOKIES_FILE" in message
    assert "`igs retry web-members-talk`" in message and "\n" not in message
    assert not (tmp_path / "without").exists()

    result = download_video(url, tmp_path / "with", key="web-members-talk",
                            ytdlp_settings=YtdlpSettings(cookies_file=jar))
    assert result.video_path.is_file() and result.duration > 10
    assert all(h.cookie == f"igs_session={SECRET}" for h in server.requests("members-talk.mp4")
               if h.status == 200)

    monkeypatch.setenv("IGS_YTDLP__COOKIES_FILE", str(jar))  # the playlist reader's settings
    page_entries = read_playlist(page, limit=None)  # yt-dlp's playlist reading uses them too
    assert [e.url.rsplit("/", 1)[1] for e in page_entries.entries] == [
        "members-talk.mp4", "second-talk.mp4"]

    assert (jar.read_bytes(), jar.stat().st_mtime_ns) == before  # yt-dlp wrote to its copy
    assert stat.S_IMODE(jar.stat().st_mode) == 0o400
    assert _copies() == copies  # and the copy is gone
    assert SECRET not in caplog.text


def test_playlist_without_cookies_says_what_to_do(guarded, monkeypatch):
    server, url, page, jar = guarded
    with pytest.raises(FeedError, match=r"cannot read playlist .*HTTP 403.*IGS_YTDLP__COOKIES_FILE"
                       r".*then try again$"):
        read_playlist(page, limit=None)


def test_refusal_reaches_the_failure_display_and_cookies_fix_it(guarded, igs_env, monkeypatch):
    """Through the real `video_download` asset: the step fails with the one line (the reason
    `igs videos`, `igs send --wait`, the system log and notifications read), then the setting
    and a retry give the download; the secret appears in no event."""
    from igs_dagster.cli.video_state import describe, video_state
    from igs_dagster.definitions import defs
    from igs_dagster.intake import accept

    server, url, page, jar = guarded
    key = accept(VideoDownload(name="video.download", data=VideoDownloadData(url=url)), igs_env).key
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        job = defs.resolve_job_def("video_ingest")  # the job `igs videos` reads
        only = [dg.AssetKey("video_download")]
        failed = job.execute_in_process(instance=instance, partition_key=key,
                                        asset_selection=only, raise_on_error=False)
        assert not failed.success
        state = video_state(instance, key)
        assert state.status == "failed"
        assert state.reason.startswith("video_download: download failed: access refused (HTTP 403)")
        line = describe(state)
        assert "IGS_YTDLP__COOKIES_FILE" in line and line.count("igs retry") == 1

        monkeypatch.setenv("IGS_YTDLP__COOKIES_FILE", str(jar))
        load_settings()
        ok = job.execute_in_process(instance=instance, partition_key=key, asset_selection=only)
        assert ok.success and Path(handed(load_settings(), key, "video_download")["video_path"]).is_file()
        events = instance.get_records_for_run(ok.run_id).records + \
            instance.get_records_for_run(failed.run_id).records
        assert not any(SECRET in str(r.event_log_entry) for r in events)

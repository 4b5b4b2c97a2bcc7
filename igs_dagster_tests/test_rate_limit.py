"""Rate limits back off and pause the pool (issue 22), end to end on loopback: a server that
answers 429 twice and then serves; the real `video_download` step asks Dagster to retry it
after the site's pause (dg.RetryRequested), the pause doubles per 429, every other download
from that site waits for it instead of hammering, and politeness spaces download starts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.video.download import Politeness, download_video
from igs_dagster.video.download_gate import DownloadGate, site_of
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import handed
from igs_dagster_tests.gateserver import GateServer


@pytest.fixture
def server(tmp_path: Path):
    with GateServer(tmp_path / "served") as srv:
        yield srv


def test_429_twice_then_served_backs_off_and_succeeds(server, igs_env, monkeypatch):
    from igs_dagster.core.settings import load_settings
    from igs_dagster.definitions import defs
    from igs_dagster.intake import accept

    monkeypatch.setenv("IGS_YTDLP__RATE_LIMIT_PAUSE_S", "1")  # minutes in life, a second here
    settings = load_settings()
    url = server.add(SAMPLE_MP4, "busy-talk.mp4")
    server.script("busy-talk.mp4", 429, 429)
    key = accept(VideoDownload(name="video.download", data=VideoDownloadData(url=url)), settings).key
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        result = defs.resolve_job_def("video_ingest").execute_in_process(
            instance=instance, partition_key=key, asset_selection=[dg.AssetKey("video_download")])
    assert result.success
    assert Path(handed(settings, key, "video_download")["video_path"]).is_file()
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    # asked by the step after each 429 for the site's pause (1 s, then doubled), not the
    # RetryPolicy's 5 s with jitter
    assert [e.event_specific_data.seconds_to_wait for e in retries] == [1.0, 2.0]
    hits = server.requests("busy-talk.mp4")
    assert [h.status for h in hits[:3]] == [429, 429, 200]
    # each retry came after the site's pause: 1 s, then doubled to 2 s (Retry-After: 1)
    assert hits[1].at - hits[0].at >= 1.0 and hits[2].at - hits[1].at >= 2.0
    gate = DownloadGate(settings.download_gate_dir).state(site_of(url))
    assert gate.strikes == 0 and "rate limiting" in gate.reason  # reset by the success


def test_a_paused_site_makes_every_download_wait(server, tmp_path):
    """Another run's 429 paused the site: this download waits for the pause, then goes."""
    url = server.add(SAMPLE_MP4, "next-talk.mp4")
    gate = DownloadGate(tmp_path / "gate")
    site = site_of(url)
    gate.pause(site, 1.5, "127.0.0.1 is rate limiting this machine (HTTP 429)")
    heard: list[str] = []
    started = time.time()
    result = download_video(url, tmp_path / "dl", polite=Politeness(
        gate, on_wait=lambda seconds, why: heard.append(why)))
    first = server.requests("next-talk.mp4")[0].at
    assert result.video_path.is_file()
    assert first - started >= 1.4  # nothing reached the server during the pause
    assert heard and heard[0].startswith("paused: 127.0.0.1 is rate limiting")
    assert gate.state(site).strikes == 0  # the success resets the doubling


def test_a_429_pauses_the_site_and_doubles(tmp_path):
    gate = DownloadGate(tmp_path / "gate")
    now = 1_000_000.0
    assert gate.pause("youtube", 300, "429", now=now) == 300
    assert gate.pause("youtube", 300, "429", now=now) == 600
    assert gate.pause("youtube", 300, "429", at_least_s=7200, now=now) == 3600  # at most an hour
    gate.succeeded("youtube")
    assert gate.state("youtube").strikes == 0
    assert gate.state("example.com").paused_until == 0  # one site's pause is its own


def test_downloads_from_a_polite_site_are_spaced(tmp_path):
    """Two runs starting together: the second waits the spacing after the first's start."""
    gate = DownloadGate(tmp_path / "gate")
    starts: list[float] = []

    def run() -> None:
        gate.wait_turn("youtube", (0.6, 0.6))
        starts.append(time.time())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(starts) == 2 and abs(starts[1] - starts[0]) >= 0.55
    assert site_of("https://youtu.be/dQw4w9WgXcQ") == site_of("https://www.youtube.com/watch?v=x")
    assert site_of("https://cdn.example.com/a.mp3") == "cdn.example.com"

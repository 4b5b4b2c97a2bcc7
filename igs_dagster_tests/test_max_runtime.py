"""A hung but living ingest run must not hold the `gpu` slot for ever: every `video_ingest` run
carries `dagster/max_runtime` (IGS_INGEST_MAX_RUNTIME_S), and the daemon's run monitoring
fails a run that goes past it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster_tests.dagster_env import DagsterEnv

TAG = dg.MAX_RUNTIME_SECONDS_TAG
FOUR_HOUR_VIDEO_S = 4 * 3600


def test_tag_name_is_the_one_run_monitoring_reads():
    from dagster._daemon.monitoring import run_monitoring

    assert TAG == "dagster/max_runtime" == run_monitoring.MAX_RUNTIME_SECONDS_TAG


def test_ingest_job_runs_carry_a_generous_max_runtime():
    """On the job's run tags, so sensor runs, UI launches and backfills all get it."""
    from igs_dagster.core.settings import load_settings
    from igs_dagster.definitions import defs

    job = defs.resolve_job_def("video_ingest")
    assert job.run_tags[TAG] == str(load_settings().ingest_max_runtime_s)
    assert int(job.run_tags[TAG]) >= FOUR_HOUR_VIDEO_S * 1.5  # a 4-hour video on a slow CPU


def test_max_runtime_is_a_setting(monkeypatch: pytest.MonkeyPatch):
    from igs_dagster.core.errors import SettingsError
    from igs_dagster.core.settings import load_settings
    from igs_dagster.defs.video.jobs import max_runtime_tags

    monkeypatch.setenv("IGS_INGEST_MAX_RUNTIME_S", "36000")
    assert max_runtime_tags(load_settings()) == {TAG: "36000"}
    monkeypatch.setenv("IGS_INGEST_MAX_RUNTIME_S", "0")  # no limit: run monitoring reads 0 so
    assert max_runtime_tags(load_settings()) == {TAG: "0"}
    monkeypatch.setenv("IGS_INGEST_MAX_RUNTIME_S", "-5")
    with pytest.raises(SettingsError, match="IGS_INGEST_MAX_RUNTIME_S"):
        load_settings()
    assert max_runtime_tags(None) == {TAG: str(8 * 3600)}  # the steps report the bad setting


def test_the_tag_follows_the_settings_of_the_process_and_of_the_tick(igs_env, monkeypatch):
    """The job's tag is what the process that loaded the code location read (a run worker, the
    code server at its start); the inbox sensor's runs carry the value of their tick, so a
    changed setting reaches them without a restart."""
    import json
    import subprocess
    import sys

    from igs_dagster.core.events import VideoDownload, VideoDownloadData
    from igs_dagster.defs.events import igs_events
    from igs_dagster.intake import accept

    code = ("from igs_dagster.definitions import defs; "
            "print(defs.resolve_job_def('video_ingest').run_tags['dagster/max_runtime'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "IGS_INGEST_MAX_RUNTIME_S": "36000"})
    assert out.stdout.strip() == "36000", out.stderr[-2000:]

    monkeypatch.setenv("IGS_INGEST_MAX_RUNTIME_S", "1234")  # after this process loaded the job
    accept(VideoDownload(name="video.download", data=VideoDownloadData(
        url="https://youtu.be/dQw4w9WgXcQ")), igs_env)
    with dg.instance_for_test() as instance:
        result = igs_events(dg.build_sensor_context(instance=instance, cursor=json.dumps(
            {"inbox": 0, "outcomes": None})))
    (request,) = result.run_requests
    assert request.tags[TAG] == "1234"


class TricklingMediaServer:
    """An HTTP server on 127.0.0.1 that announces a large mp4 and then sends one byte every
    second, for ever: a download that is alive but never ends (yt-dlp's socket timeout never
    fires)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/never-ending.mp4"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n"
                             b"Content-Length: 500000000\r\n\r\n")
                while not self._stop.wait(1.0):
                    conn.sendall(b"\0")
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.mark.slow
def test_run_past_its_max_runtime_is_failed_by_the_daemon(tmp_path: Path):
    env = DagsterEnv.create(tmp_path, IGS_INGEST_MAX_RUNTIME_S="3")
    yaml = env.home / "dagster.yaml"
    text = yaml.read_text()
    assert "run_monitoring:\n  enabled: true" in text and "poll_interval_seconds: 30" in text
    yaml.write_text(text.replace("poll_interval_seconds: 30", "poll_interval_seconds: 1"))
    server = TricklingMediaServer()
    env.start_daemon()
    instance = env.instance()
    try:
        key = env.key(server.url)
        env.igs("send", server.url, check=True)

        def first_finished():
            records = instance.get_run_records(filters=dg.RunsFilter(job_name="video_ingest"))
            done = [r for r in records if r.dagster_run.is_finished]
            return done[-1] if done else None  # the oldest finished (records are newest first)

        record = env.wait_for(first_finished, 180, "the hung run to be ended")
        run = record.dagster_run
        assert run.tags[TAG] == "3" and run.tags.get("dagster/sensor_name") == "igs_events"
        assert run.status == dg.DagsterRunStatus.FAILURE, run.status
        messages = [r.event_log_entry.message or "" for r in instance.get_records_for_run(run.run_id).records]
        assert any("maximum runtime of 3 seconds" in m for m in messages), messages[-10:]
        started = [r for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.STEP_START).records]
        assert [r.event_log_entry.step_key for r in started] == ["video_download"]  # ended mid-download
        assert record.end_time - record.start_time < 60  # 3 s + monitoring poll + cancel, not for ever
        assert run.tags["dagster/partition"] == key
        # run_retries (meant for crashed workers) re-executes it, and the retry carries the same
        # limit: a video that always hangs holds the slot at most (1 + max_retries) x max runtime
        (retry,) = env.wait_for(lambda: instance.get_runs(
            filters=dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id})), 60, "the retry")
        assert retry.tags[TAG] == "3"
    finally:
        env.stop_daemon()
        server.close()
        instance.dispose()

"""A live stream or premiere that has not started is not a failure (issue 22): the download
says *waiting* with the time it tries again (from the `release_timestamp` yt-dlp reports),
`igs videos` and notifications show it as waiting, and the `waiting_videos` sensor queues it
again once due.

No loopback page makes yt-dlp's YouTube extractor say "upcoming", so a test extractor takes
its place in yt-dlp's own extractor registry (where plugins go) and does what YoutubeIE does
for an upcoming stream: it fetches the page, then `raise_no_formats(reason, expected=True)`,
which raises unless `ignore_no_formats_error` is set, and then returns `live_status` and
`release_timestamp`. Everything after that is yt-dlp's and ours."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.globals import extractors

from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.defs.resources import IgsSettings
from igs_dagster.video.download import NotYetAvailable, download_video
from igs_dagster.video.waiting import AFTER_START_S, WaitingVideos, live_wait
from igs_dagster_tests.gateserver import GateServer

START = time.time() + 3 * 3600


class UpcomingStreamIE(InfoExtractor):
    _VALID_URL = r"http://127\.0\.0\.1:\d+/live/(?P<id>[\w-]+)"

    def _real_extract(self, url):
        video_id = self._match_id(url)
        self._download_webpage(url, video_id)
        self.raise_no_formats("This live event will begin in 3 hours.", expected=True,
                              video_id=video_id)
        return {"id": video_id, "title": "Launch stream", "formats": [],
                "live_status": "is_upcoming", "release_timestamp": int(START)}


@pytest.fixture
def upcoming(tmp_path: Path):
    # yt-dlp fills the registry on the first import of its extractor list, into whatever dict
    # is there then: fill it before swapping, so restoring leaves the full registry in place
    import yt_dlp.extractor.extractors  # noqa: F401

    saved = extractors.value
    extractors.value = {"UpcomingStreamIE": UpcomingStreamIE, **saved}
    try:
        with GateServer(tmp_path / "served") as server:
            yield server.write("live/launch", "<html>a stream page</html>")
    finally:
        extractors.value = saved


def test_upcoming_stream_raises_waiting_until_after_it(upcoming, tmp_path):
    with pytest.raises(NotYetAvailable) as waiting:
        download_video(upcoming, tmp_path / "dl", key="web-launch")
    assert waiting.value.live_status == "is_upcoming"
    assert waiting.value.until == pytest.approx(int(START) + AFTER_START_S)
    assert str(waiting.value).startswith("waiting: the live stream or premiere starts ")
    assert not (tmp_path / "dl").exists()


def test_waiting_is_shown_and_queued_again_when_due(upcoming, igs_env):
    from igs_dagster.cli.video_state import describe, video_state
    from igs_dagster.core.inbox import EventQueue
    from igs_dagster.definitions import defs
    from igs_dagster.defs.video.waiting import waiting_videos
    from igs_dagster.intake import accept

    key = accept(VideoDownload(name="video.download", data=VideoDownloadData(url=upcoming)),
                 igs_env).key
    store = WaitingVideos(igs_env.waiting_db)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        run = defs.resolve_job_def("video_ingest").execute_in_process(
            instance=instance, partition_key=key, asset_selection=[dg.AssetKey("video_download")],
            raise_on_error=False)
        assert not run.success
        state = video_state(instance, key)
        assert state.status == "waiting" and state.reason.startswith("waiting: the live stream")
        assert describe(state).startswith(f"waiting: {key}: the live stream") and "retry" not in describe(state)
        assert store.get(key).until == pytest.approx(int(START) + AFTER_START_S)
        from igs_dagster.defs.system.notify_sensors import video_failed

        message = video_failed(instance, instance.get_run_by_id(run.run_id), igs_env)
        assert message.title.startswith("Video waiting") and message.kind == "info"

        context = dg.build_sensor_context(instance=instance, resources={"igs": IgsSettings()})
        assert "no waiting video is due" in waiting_videos(context).skip_message
        store.put(key, time.time() - 1, store.get(key).reason)  # the stream has ended
        assert f"{key} (retry 1)" in waiting_videos(dg.build_sensor_context(
            instance=instance, resources={"igs": IgsSettings()})).skip_message
    assert store.get(key) is None
    queue = EventQueue(igs_env.queue_db)
    events = [e for e in queue.after(0, limit=10) if e.key == key]
    assert len(events) == 2 and list(queue.retry_numbers([e.id for e in events]).values()) == [1]


def test_live_wait_times():
    now = 1_000_000.0
    assert live_wait({"live_status": "is_upcoming", "release_timestamp": now + 600,
                      "duration": 1200}, now)[0] == now + 600 + 1200 + 15 * 60
    assert live_wait({"live_status": "is_upcoming", "release_timestamp": now - 60}, now)[0] == now + 1800
    assert live_wait({"live_status": "is_live"}, now) == (
        now + 1800, live_wait({"live_status": "is_live"}, now)[1])
    assert "is live now" in live_wait({"live_status": "is_live"}, now)[1]
    assert "being processed" in live_wait({"live_status": "post_live"}, now)[1]

"""Polite by default (issue 22): every yt-dlp call gets the pause between an extraction's requests
from the one option builder, and polling followed feeds queues at most IGS_FEEDS__MAX_PER_HOUR
entries an hour, leaving the rest unseen (so nothing is lost) for later polls."""

from __future__ import annotations

import pytest

from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import Settings, YtdlpSettings
from igs_dagster.video import ytdlp
from igs_dagster.video.subscriptions import HOUR_S, Subscriptions, follow, poll_due
from igs_dagster_tests.feedserver import FeedServer, rss
from igs_dagster_tests.test_feeds import episodes, queued_urls


def test_base_options_carry_runtime_cookies_and_pauses(tmp_path):
    defaults = ytdlp.base_options(YtdlpSettings())
    assert defaults["sleep_interval_requests"] == 0.75  # yt-dlp's own `-t sleep` preset value
    assert defaults["js_runtimes"] == {"deno": {"path": None}}
    assert "cookiefile" not in defaults and "cookiesfrombrowser" not in defaults
    browser = ytdlp.base_options(YtdlpSettings(cookies_from_browser="chrome:Profile 1"))
    assert browser["cookiesfrombrowser"] == ("chrome", "Profile 1", None, None)
    assert Settings.model_fields["ytdlp"].default.sleep_s == 10  # spacing between downloads
    bad = YtdlpSettings(cookies_from_browser="netscape")
    with pytest.raises(Exception, match="IGS_YTDLP__COOKIES_FROM_BROWSER: unsupported browser"):
        ytdlp.base_options(bad)


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def test_polling_is_capped_per_hour_and_loses_nothing(server, igs_env):
    path = "/busy.rss"
    url = server.set(path, rss("Busy", episodes(server, [1])))
    store, queue = Subscriptions(igs_env.feeds_db), EventQueue(igs_env.queue_db)
    feed, _ = follow(store, queue, igs_env.data_dir, url, newest=0, interval_s=60)
    server.set(path, rss("Busy", episodes(server, range(1, 7))))  # 5 new episodes
    now = feed.next_poll

    [first] = poll_due(store, queue, igs_env.data_dir, now=now, max_per_hour=2)
    assert len(first.queued) == 2 and first.deferred == 3
    assert queued_urls(igs_env) == [server.url("/ep2.mp3"), server.url("/ep3.mp3")]  # oldest first
    [capped] = poll_due(store, queue, igs_env.data_dir, now=now + 60, max_per_hour=2)
    assert capped.queued == [] and capped.deferred == 3  # read again in full (no 304), held back
    [later] = poll_due(store, queue, igs_env.data_dir, now=now + HOUR_S + 1, max_per_hour=2)
    assert len(later.queued) == 2 and later.deferred == 1
    [last] = poll_due(store, queue, igs_env.data_dir, now=now + 2 * HOUR_S + 2, max_per_hour=2)
    assert len(last.queued) == 1 and last.deferred == 0
    assert len(queued_urls(igs_env)) == 5 == len(set(queued_urls(igs_env)))

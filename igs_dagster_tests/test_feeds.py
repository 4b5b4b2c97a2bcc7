"""Playlists and followed feeds, against feeds served on 127.0.0.1 and a real Dagster instance."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from igs_dagster import cli
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inbox import EventQueue
from igs_dagster.defs.events import igs_events
from igs_dagster.defs.resources import IgsSettings
from igs_dagster.defs.video.feeds import feed_sensor
from igs_dagster.video import feeds
from igs_dagster.video.subscriptions import Subscriptions, follow, poll_due
from igs_dagster_tests.feedserver import Episode, FeedServer, atom, rss, youtube_channel

CHANNEL = "UC" + "x" * 22


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def episodes(srv: FeedServer, numbers, show="ep") -> list[Episode]:
    """Episodes newest first; episode n published on day n of November."""
    return [
        Episode(f"guid-{n}", f"Episode {n}", srv.url(f"/{show}{n}.mp3"),
                f"Mon, {n:02d} Nov 2026 10:00:00 GMT", f"<p>About <b>episode</b> {n} &amp; more</p>")
        for n in sorted(numbers, reverse=True)
    ]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def queued_urls(settings) -> list[str]:
    return [q.event.data.url for q in EventQueue(settings.queue_db).after(0)]


# --------------------------------------------------------------------------- reading feeds


def test_rss_atom_and_youtube_feeds_parse_into_entries(server):
    url = server.set("/show.rss", rss("The Show", episodes(server, [1, 2])))
    page = feeds.read_feed(url)
    assert page.title == "The Show"
    assert [e.title for e in page.entries] == ["Episode 2", "Episode 1"]  # newest first
    first = page.entries[0]
    assert first.url == server.url("/ep2.mp3") and first.uid == "guid-2"
    assert first.published == "2026-11-02" and first.show == "The Show" and first.duration == 11
    assert first.description == "About episode 2 & more"  # tags dropped, entities decoded

    page = feeds.read_feed(server.set("/a.atom", atom("Atom", episodes(server, [3])), "application/atom+xml"))
    assert [(e.uid, e.url) for e in page.entries] == [("guid-3", server.url("/ep3.mp3"))]

    yt = youtube_channel("Chan", CHANNEL, [("dQw4w9WgXcQ", "New", "2026-11-05T00:00:00+00:00"),
                                           ("9bZkp7q19f0", "Old", "2026-11-01T00:00:00+00:00")])
    page = feeds.read_feed(server.set("/feeds/videos.xml", yt))
    assert [(e.uid, e.url, e.show) for e in page.entries] == [
        ("dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Chan"),
        ("9bZkp7q19f0", "https://www.youtube.com/watch?v=9bZkp7q19f0", "Chan"),
    ]


def test_conditional_get_500_and_garbage(server):
    url = server.set("/show.rss", rss("S", episodes(server, [1])))
    page = feeds.read_feed(url)
    assert page.etag and page.modified
    again = feeds.read_feed(url, page.etag, page.modified)
    assert again.not_modified and server.hits("/show.rss") == [200, 304]
    server.fail("/show.rss", 500)
    with pytest.raises(feeds.FeedError, match="HTTP 500"):
        feeds.read_feed(url, page.etag)
    server.set("/junk", b"\x00\xff<<< not a feed", "text/html")
    with pytest.raises(feeds.FeedError, match="not an RSS/Atom feed"):
        feeds.read_feed(server.url("/junk"))


def test_youtube_urls_map_to_their_public_feed():
    assert feeds.youtube_feed_url(f"https://www.youtube.com/channel/{CHANNEL}") == (
        f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}")
    assert feeds.youtube_feed_url("https://www.youtube.com/playlist?list=PLabc_123") == (
        "https://www.youtube.com/feeds/videos.xml?playlist_id=PLabc_123")
    assert feeds.youtube_feed_url("https://www.youtube.com/@someone") is None  # needs a look-up
    assert feeds.is_playlist_url("https://www.youtube.com/playlist?list=PLabc_123")
    assert feeds.is_playlist_url("https://www.youtube.com/@someone")
    assert feeds.is_playlist_url("http://127.0.0.1:8000/podcast.rss")
    assert not feeds.is_playlist_url("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLabc_123")
    assert not feeds.is_playlist_url("https://youtu.be/dQw4w9WgXcQ")
    assert not feeds.is_playlist_url("http://127.0.0.1:8000/talk.mp4")


# --------------------------------------------------------------------------- playlists: igs send


def test_send_playlist_queues_each_entry_once_in_order(server, igs_env, capsys):
    url = server.set("/list.rss", rss("List", episodes(server, [1, 2, 3])))
    code, out, _ = run_cli(capsys, "send", url, "--dry-run")
    assert code == 0 and "would queue 3" in out and not igs_env.queue_db.exists()
    code, out, _ = run_cli(capsys, "send", url, "--limit", "2")
    assert code == 0, out
    # playlist order (the feed lists newest first), only the first two, nothing downloaded
    assert queued_urls(igs_env) == [server.url("/ep3.mp3"), server.url("/ep2.mp3")]
    assert not any(p.endswith(".mp3") for p, _ in server.requests)
    code, out, _ = run_cli(capsys, "send", url)
    assert code == 0 and "queued 1, 2 already known" in out
    assert len(queued_urls(igs_env)) == 3
    source = EventQueue(igs_env.queue_db).get_source(out.split("\t")[0])
    assert source is None or source.title  # the entry title travels with the source


def test_send_bad_playlist_queues_nothing(server, igs_env, capsys):
    good = server.set("/list.rss", rss("List", episodes(server, [1])))
    server.fail("/bad.rss", 500)
    code, _, err = run_cli(capsys, "send", good, server.url("/bad.rss"))
    assert code != 0 and "HTTP 500" in err and len(err.strip().splitlines()) == 1
    assert not igs_env.queue_db.exists() or queued_urls(igs_env) == []


def test_500_playlist_entries_become_runs_in_one_inbox_tick(server, igs_env):
    many = [Episode(f"g{n}", f"E{n}", server.url(f"/m{n}.mp3")) for n in range(500)]
    page = feeds.read_playlist(server.set("/big.rss", rss("Big", many)))
    queued = feeds.queue_entries(page.entries, EventQueue(igs_env.queue_db), igs_env.data_dir)
    assert sum(q.event_id is not None for q in queued) == 500
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"igs": IgsSettings()})
        result = igs_events(ctx)
        assert len(result.run_requests) == 500
        assert len(result.dynamic_partitions_requests[0].partition_keys) == 500
        assert [r.partition_key for r in result.run_requests] == [q.key for q in queued]


# --------------------------------------------------------------------------- following


def test_follow_takes_newest_then_polls_only_new_entries(server, igs_env):
    path = "/pod.rss"
    url = server.set(path, rss("Pod", episodes(server, [1, 2, 3, 4, 5])))
    store, queue = Subscriptions(igs_env.feeds_db), EventQueue(igs_env.queue_db)
    feed, queued = follow(store, queue, igs_env.data_dir, url, newest=2, interval_s=60)
    assert [q.entry.title for q in queued] == ["Episode 4", "Episode 5"]  # newest 2, oldest first
    with pytest.raises(PermanentError, match="already following"):
        follow(store, queue, igs_env.data_dir, url)

    now = feed.next_poll
    assert poll_due(store, queue, igs_env.data_dir, now=now - 1) == []  # not due yet
    [result] = poll_due(store, queue, igs_env.data_dir, now=now)
    assert result.status == "not-modified"  # ETag answered by 304

    # the feed changes between ticks: two new episodes
    server.set(path, rss("Pod", episodes(server, [1, 2, 3, 4, 5, 6, 7])))
    [result] = poll_due(store, queue, igs_env.data_dir, now=now + 60)
    assert result.status == "new" and len(result.queued) == 2
    assert queued_urls(igs_env)[-2:] == [server.url("/ep6.mp3"), server.url("/ep7.mp3")]
    meta = feeds.entry_meta(igs_env.data_dir, result.queued[0])
    assert meta["show"] == "Pod" and meta["published"] == "2026-11-06"
    assert meta["description"] == "About episode 6 & more" and meta["title"] == "Episode 6"

    # 500, then garbage: errors are recorded and backed off, nothing queued
    server.fail(path, 500)
    [result] = poll_due(store, queue, igs_env.data_dir, now=now + 120)
    assert result.status == "error" and "HTTP 500" in result.error
    assert store.get(url).failures == 1 and store.get(url).next_poll == pytest.approx(now + 180)
    server.set(path, b"<html>oops", "text/html")
    [result] = poll_due(store, queue, igs_env.data_dir, now=now + 240)
    assert result.status == "error" and "not an RSS/Atom feed" in result.error
    assert len(queued_urls(igs_env)) == 4


def test_a_poll_interrupted_after_queueing_repeats_nothing(server, igs_env):
    """The process dies after queueing new entries but before recording them as seen."""
    path = "/pod.rss"
    url = server.set(path, rss("Pod", episodes(server, [1])))
    store, queue = Subscriptions(igs_env.feeds_db), EventQueue(igs_env.queue_db)
    feed, _ = follow(store, queue, igs_env.data_dir, url, newest=0, interval_s=60)
    server.set(path, rss("Pod", episodes(server, [1, 2])))
    page = feeds.read_feed(url)
    feeds.queue_entries([page.entries[0]], queue, igs_env.data_dir)  # ...then "crash"
    [result] = poll_due(store, queue, igs_env.data_dir, now=feed.next_poll)
    assert result.queued == [] and queued_urls(igs_env) == [server.url("/ep2.mp3")]


def test_cli_follow_unfollow_following(server, igs_env, capsys):
    url = server.set("/pod.rss", rss("Pod", episodes(server, [1, 2, 3, 4])))
    code, out, _ = run_cli(capsys, "follow", url, "--interval", "30")
    assert code == 0 and "queued 3" in out  # the default: the newest 3
    code, out, _ = run_cli(capsys, "following", "--json")
    [row] = json.loads(out)
    assert row["url"] == url and row["title"] == "Pod" and row["interval_s"] == 30
    code, _, err = run_cli(capsys, "follow", url)
    assert code != 0 and "already following" in err
    code, out, _ = run_cli(capsys, "unfollow", url)
    assert code == 0 and "no longer following Pod" in out
    code, _, err = run_cli(capsys, "unfollow", url)
    assert code != 0 and "not following" in err
    server.fail("/gone.rss", 500)
    code, _, err = run_cli(capsys, "follow", server.url("/gone.rss"))
    assert code != 0 and "HTTP 500" in err and not Subscriptions(igs_env.feeds_db).list()


def test_feed_sensor_queues_new_episodes_for_the_inbox_sensor(server, igs_env):
    path = "/pod.rss"
    url = server.set(path, rss("Pod", episodes(server, [1])))
    store = Subscriptions(igs_env.feeds_db)
    feed, _ = follow(store, EventQueue(igs_env.queue_db), igs_env.data_dir, url, newest=0, interval_s=5)
    server.set(path, rss("Pod", episodes(server, [1, 2])))
    with dg.instance_for_test() as instance:
        def tick(sensor, cursor=None):
            ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"igs": IgsSettings()})
            return sensor(ctx)

        with store._connect() as conn:  # due now
            conn.execute("UPDATE feeds SET next_poll = 0")
        skipped = tick(feed_sensor)
        assert "1 entries queued" in str(skipped.skip_message)
        assert "no followed feed is due" in str(tick(feed_sensor).skip_message)
        result = tick(igs_events)
        [request] = result.run_requests
        assert request.partition_key.startswith("web-ep2-")
        assert result.dynamic_partitions_requests[0].partition_keys == [request.partition_key]


def test_feed_sensor_reads_the_settings_once_and_hands_their_values_down(server, igs_env, monkeypatch):
    """One read of the settings per tick (the `igs` resource): the poll's threads run inside the
    sensor's address fence instead of loading the settings again for a policy; with loopback
    no longer allowed, the fence refuses the feed server in those threads."""
    import igs_dagster.core.settings as settings_module
    import igs_dagster.defs.resources as resources_module
    import igs_dagster.video.ytdlp as ytdlp_module

    url = server.set("/pod.rss", rss("Pod", episodes(server, [1])))
    store = Subscriptions(igs_env.feeds_db)
    follow(store, EventQueue(igs_env.queue_db), igs_env.data_dir, url, newest=0, interval_s=5)
    server.set("/pod.rss", rss("Pod", episodes(server, [1, 2])))
    loads = []
    real = settings_module.load_settings

    def counted(**overrides):
        loads.append(1)
        return real(**overrides)

    for module in (settings_module, resources_module, ytdlp_module):
        monkeypatch.setattr(module, "load_settings", counted)

    def tick() -> str:
        with store._connect() as conn:  # due now
            conn.execute("UPDATE feeds SET next_poll = 0")
        with dg.instance_for_test() as instance:
            ctx = dg.build_sensor_context(instance=instance, resources={"igs": IgsSettings()})
            return str(feed_sensor(ctx).skip_message)

    assert "1 entries queued" in tick() and len(loads) == 1
    monkeypatch.setenv("IGS_NETWORK__ALLOW", "[]")
    loads.clear()
    assert "1 error" in tick() and len(loads) == 1
    assert "not a public address" in (Subscriptions(igs_env.feeds_db).list()[0].last_error or "")

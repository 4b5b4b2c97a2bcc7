"""A followed podcast feed on 127.0.0.1 turns a new episode into a note with no command typed,
and the note-ready notification arrives once, also after a daemon restart (real daemon)."""

from __future__ import annotations

import time

import pytest

from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.feedserver import Episode, FeedServer, rss
from igs_dagster_tests.test_notify import Receiver

pytestmark = pytest.mark.slow


def test_followed_feed_new_episode_becomes_a_note_and_one_notification(tmp_path, media_server, jfk_mp3):
    receiver = Receiver()
    with FeedServer() as feeds:
        old = Episode("ep-1", "Old episode", media_server.add(jfk_mp3, "pod-ep1.mp3"))
        url = feeds.set("/pod.rss", rss("Loopback Radio", [old]))
        env = DagsterEnv.create(tmp_path, IGS_NOTIFY__URLS=receiver.url)
        try:
            out = env.igs("follow", url, "--newest", "0", "--interval", "5", check=True).stdout
            assert "queued 0" in out
            env.start_daemon()
            new = Episode("ep-2", "Ask not", media_server.add(jfk_mp3, "pod-ep2.mp3"),
                          "Tue, 03 Nov 2026 10:00:00 GMT", "<p>The <b>inaugural</b> address.</p>")
            feeds.set("/pod.rss", rss("Loopback Radio", [new, old]))

            notes = env.vault / "Resources" / "videos"
            note = env.wait_for(lambda: next(iter(notes.glob("*.md")), None) if notes.exists() else None,
                                300, "a note for the new episode")
            text = env.wait_for(lambda: (t := note.read_text()) and "enriched_by: builtin" in t and t, 120, "enrichment")
            assert "title: Ask not" in text or 'title: "Ask not"' in text
            assert "Loopback Radio" in text and "2026-11-03" in text
            assert "The inaugural address." in text
            assert "ask not what your country can do for you" in text.lower()
            assert len(list(notes.glob("*.md"))) == 1  # the old episode was only marked seen

            env.wait_for(lambda: receiver.messages, 120, "the note-ready notification")
            env.stop_daemon()
            env.start_daemon()
            time.sleep(25)  # two ticks of the notification sensors after the restart
            assert [m["title"] for m in receiver.messages] == ["Note ready: Ask not"]
            assert "obsidian://open?vault=vault&file=Resources%2Fvideos%2F" in receiver.messages[0]["message"]
        finally:
            env.stop_daemon()
            receiver.close()

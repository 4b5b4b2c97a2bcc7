"""`igs send` of a playlist/feed takes --force, --wait and the no-daemon hint as a single URL
does: a loopback RSS feed, the real inbox, and (slow) a real daemon running the pipeline."""

from __future__ import annotations

import pytest

from igs_dagster import cli
from igs_dagster.cli.daemon_probe import NO_DAEMON_HINT
from igs_dagster.core.inbox import EventQueue
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.feedserver import Episode, FeedServer, rss


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def _run(capsys, *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_playlist_force_requeues_known_entries_and_hints_once(server, igs_env, capsys):
    url = server.set("/list.rss", rss("List", [Episode("g2", "Two", server.url("/2.mp3")),
                                               Episode("g1", "One", server.url("/1.mp3"))]))
    code, out = _run(capsys, "send", url)
    assert code == 0 and [line.split("\t")[1] for line in out[:2]] == ["queued", "queued"]
    assert out[2:] == ["List: 2 entries, queued 2, 0 already known", NO_DAEMON_HINT]
    keys = [line.split("\t")[0] for line in out[:2]]

    code, out = _run(capsys, "send", url)  # again, no --force: nothing new, no hint
    assert code == 0 and out == [f"{k}\tknown\t{t}" for k, t in zip(keys, ("Two", "One"), strict=True)
                                 ] + ["List: 2 entries, queued 0, 2 already known"]

    code, out = _run(capsys, "send", "--force", url)  # as `igs retry` for each known entry
    assert code == 0, out
    assert [line.split("\t")[:2] for line in out[:2]] == [[k, "retry"] for k in keys]
    assert out[2:] == ["List: 2 entries, queued 0, 2 already known (2 queued again)",
                       NO_DAEMON_HINT]
    events = EventQueue(igs_env.queue_db).after(0)
    assert [e.key for e in events] == keys + keys  # a new event each: the sensor runs them again


@pytest.mark.slow
def test_playlist_wait_and_force_with_a_daemon(deployment: DagsterEnv, media_server):
    good = media_server.add(SAMPLE_MP4, "pl-good.mp4")
    late = media_server.url("pl-late.mp4")  # not there yet: its run fails (404)
    with FeedServer() as feed:
        url = feed.set("/pl.rss", rss("Playlist", [Episode("g2", "Late", late),
                                                   Episode("g1", "Good", good)]))
        proc = deployment.igs("send", "--wait", "--timeout", "400", url, timeout=480)
        print(f"\n$ igs send --wait {url}   # exit {proc.returncode}\n{proc.stdout}")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        bad, ok = (line.split("\t")[0] for line in lines[:2])  # in the feed's order
        assert "no Dagster daemon" not in proc.stdout
        assert any(line.startswith(f"{ok}: done → ") for line in lines), proc.stdout
        assert any(line.startswith(f"{bad}: failed: ") and "404" in line for line in lines)
        assert lines[-1] == f"2 videos: 1 done, 1 failed (retry with `igs retry {bad}`)"

        # without --force a known failed entry is reported, not run, and --wait exits 1
        proc = deployment.igs("send", "--wait", url, timeout=120)
        assert proc.returncode == 1 and proc.stdout.splitlines()[:2] == [
            f"{bad}\tfailed\tLate", f"{ok}\tdone\tGood"]

        # the media is back: --force re-queues both known entries; --wait follows both
        media_server.add(SAMPLE_MP4, "pl-late.mp4")
        proc = deployment.igs("send", "--force", "--wait", "--timeout", "400", url, timeout=480)
        print(f"$ igs send --force --wait {url}\n{proc.stdout}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert [line.split("\t")[1] for line in lines[:2]] == ["retry", "retry"]
        assert lines[2] == "Playlist: 2 entries, queued 0, 2 already known (2 queued again)"
        assert lines[-1] == "2 videos: 2 done, 0 failed"

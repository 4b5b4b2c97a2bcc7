"""Notifications through Apprise to a receiver on 127.0.0.1: one message per event, whatever
re-evaluates the sensor; a failing service never raises and costs a bounded wait."""

from __future__ import annotations

import http.server
import json
import time

import dagster as dg
import pytest

from igs_dagster.core.local_http import LoopbackServer
from igs_dagster.core.notify import Message, Notifier, obsidian_link
from igs_dagster.core.settings import NotifySettings, load_settings
from igs_dagster.defs import outcomes
from igs_dagster.defs.events import igs_events
from igs_dagster.defs.system import notify_sensors
from igs_dagster.loop import state as st
from igs_dagster.loop.prd import Prd


class Receiver(LoopbackServer):
    """An HTTP endpoint that records each JSON POST (Apprise's json:// target)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.messages: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.messages.append(json.loads(body or b"{}"))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)
        self.url = f"json://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_one_message_per_key_even_after_a_restart(receiver, tmp_path):
    settings = NotifySettings(urls=receiver.url)
    ledger = tmp_path / "notify.sqlite3"
    message = Message("note.ready", "Note ready: JFK", "0:11 · Resources/videos/jfk.md")
    assert Notifier(settings, ledger).send("run:1:note", message) == "sent"
    assert Notifier(settings, ledger).send("run:1:note", message) == "duplicate"  # new process
    assert [(m["title"], m["message"]) for m in receiver.messages] == [
        ("Note ready: JFK", "0:11 · Resources/videos/jfk.md")]
    assert Notifier(NotifySettings(urls=receiver.url, events=["video.failed"]), ledger).send(
        "run:2:note", message) == "off"  # not a wanted event
    assert Notifier(NotifySettings(), ledger).send("run:3:note", message) == "off"  # no URL
    assert len(receiver.messages) == 1


def test_a_failing_service_never_raises_and_is_bounded(tmp_path):
    bad = Receiver(status=500)
    try:
        settings = NotifySettings(urls=bad.url, retries=2, timeout_s=1)
        notifier = Notifier(settings, tmp_path / "n.sqlite3")
        began = time.monotonic()
        assert notifier.send("a", Message("video.failed", "t", "b")) == "failed"
        assert len(bad.messages) == 3  # first try + 2 retries
        assert notifier.status("a") == "failed"
        # while the service cools off, the next event costs no wait and no request
        assert notifier.send("b", Message("video.failed", "t", "b")) == "failed"
        assert len(bad.messages) == 3 and time.monotonic() - began < 10
    finally:
        bad.close()
    refused = NotifySettings(urls=bad.url.replace("/hook", "/other"), retries=0, timeout_s=1)
    assert Notifier(refused, tmp_path / "n.sqlite3").send("c", Message("loop.story", "t", "b")) == "failed"


def test_obsidian_link(tmp_path):
    vault = tmp_path / "My Vault"
    assert obsidian_link(vault, vault / "Resources" / "videos" / "a b.md") == (
        "obsidian://open?vault=My%20Vault&file=Resources%2Fvideos%2Fa%20b")


# --------------------------------------------------------------------------- sensors


@dg.asset(partitions_def=dg.DynamicPartitionsDefinition(name="videos"), name="vault_note")
def _vault_note() -> dg.MaterializeResult:
    settings = load_settings()
    note = settings.vault_dir / "Resources" / "videos" / "jfk.md"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text('---\ntitle: "JFK: ask not"\nduration: "0:11"\n---\n# JFK\n')
    return dg.MaterializeResult(metadata={"note": dg.MetadataValue.path(str(note))})


@dg.asset(partitions_def=dg.DynamicPartitionsDefinition(name="videos"), name="video_download")
def _broken_download() -> None:
    raise dg.Failure(description="HTTP Error 404: Not Found")


def _tick(instance):
    """One tick of the `igs_events` sensor over every finished run (cursor before all of them)."""
    cursor = json.dumps({"inbox": 0, "outcomes": {outcome: -1 for outcome in outcomes.OUTCOMES}})
    return igs_events(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_sensors_send_note_ready_and_video_failed_once(receiver, igs_env, monkeypatch):
    monkeypatch.setenv("IGS_NOTIFY__URLS", receiver.url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", ["jfk"])
        dg.materialize([_vault_note], instance=instance, partition_key="jfk")
        for _ in range(2):  # a re-evaluated tick
            _tick(instance)
        [note] = receiver.messages
        assert note["title"] == "Note ready: JFK: ask not"
        assert note["message"].startswith("0:11 · Resources/videos/jfk.md\nobsidian://open?vault=vault&file=")

        dg.materialize([_broken_download], instance=instance, partition_key="jfk",
                       raise_on_error=False)
        for _ in range(2):
            _tick(instance)
        assert len(receiver.messages) == 2
        failed = receiver.messages[1]
        assert failed["title"] == "Video failed: jfk"
        assert "video_download: HTTP Error 404: Not Found" in failed["message"]
        assert failed["message"].endswith("\nretry: igs retry jfk")  # what the CLI says too (issue 26)


def test_loop_story_and_loop_finished_once(receiver, igs_env, monkeypatch, tmp_path):
    monkeypatch.setenv("IGS_NOTIFY__URLS", receiver.url)
    settings = load_settings()
    prd = Prd(title="t", checks={"test": "pytest"}, stories=[
        {"id": "S1", "title": "Add login", "acceptance_criteria": ["x"], "priority": 1},
        {"id": "S2", "title": "Add logout", "acceptance_criteria": ["y"], "priority": 2},
    ])
    loop = st.new_loop(settings.loops_dir, project=tmp_path, prd_source=tmp_path / "prd.json",
                       prd=prd, story_kinds={}, max_attempts=2, tools={})
    run = dg.DagsterRun(job_name="loop_attempt", tags={"igs/loop": loop.loop_id},
                        status=dg.DagsterRunStatus.SUCCESS)
    with dg.instance_for_test() as instance:
        def notify(failed=False):
            status = dg.DagsterRunStatus.FAILURE if failed else dg.DagsterRunStatus.SUCCESS
            return notify_sensors.notify_run(instance, run.with_status(status), settings)

        assert notify() == []  # nothing decided yet
        loop.stories["S1"].status = "passed"
        st.save_loop(settings.loops_dir, loop)
        assert notify() == ["sent"] and notify() == ["duplicate"]
        loop.stories["S2"].status = "skipped"
        loop.status = "complete"
        st.save_loop(settings.loops_dir, loop)
        assert notify() == ["duplicate", "sent", "sent"]
        assert notify(failed=True) == ["duplicate"] * 3
    titles = [m["title"] for m in receiver.messages]
    assert titles == ["Loop story passed: Add login", "Loop story skipped: Add logout",
                      "Loop complete: 1 passed, 1 skipped"]
    assert f"branch {loop.branch}" in receiver.messages[-1]["message"]

"""The HTTP event API on a real port (`igs api --port 0` in its own process) in front of a real
Dagster deployment (daemon, sensor, run workers): a good event is queued and materialized; every
malformed or unauthorized request is refused with the right status and queues nothing; the token
never shows up in responses or logs."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.process_groups import stop_process_group
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv

pytestmark = pytest.mark.slow
TOKEN = "api-test-token-5b9d0c2e7f41a8"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class Api:
    def __init__(self, env: DagsterEnv, proc: subprocess.Popen, host: str, port: int, log: Path):
        self.env, self.proc, self.host, self.port, self.log = env, proc, host, port, log

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                chunks: list[bytes] | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            if chunks is not None:
                conn.request(method, path, body=iter(chunks), headers=headers or {}, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            assert TOKEN not in raw.decode("utf-8", "replace")
            assert resp.getheader("content-type", "").startswith("application/json"), raw
            return resp.status, json.loads(raw)
        finally:
            conn.close()

    def post(self, event: object, headers: dict | None = None) -> tuple[int, dict]:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        return self.request("POST", "/events", body, {**AUTH, **(headers or {})})

    def queue(self) -> EventQueue:
        return EventQueue(self.env.data / "queue.sqlite3")

    def rows(self) -> list[tuple]:
        import sqlite3

        db = self.env.data / "queue.sqlite3"
        if not db.exists():
            return []
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT id, name, key, data FROM events ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    env = DagsterEnv.create(tmp_path_factory.mktemp("api"), IGS_API__TOKEN=TOKEN)
    # create the SQLite storage once, before the daemon and its code server race to create it
    # (two processes stamping a fresh schedules.db leave two alembic heads behind)
    env.instance().dispose()
    env.start_daemon()
    log = env.root / "api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "igs_dagster.cli", "api", "--port", "0"],
            env=env.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        match = env.wait_for(
            lambda: proc.poll() is None and re.search(rb"listening on http://([\d.]+):(\d+)", log.read_bytes()),
            60, "the API to listen",
        )
        yield Api(env, proc, match.group(1).decode(), int(match.group(2)), log)
    finally:
        if proc.poll() is None:
            stop_process_group(proc.pid, grace_s=30)  # SIGTERM, SIGKILL what is left after 30 s
            proc.wait(10)
        env.stop_daemon()


@pytest.fixture(scope="module")
def video_event(api: Api, media_server):
    """POST one `video.download` early, so the daemon works while the other tests run."""
    url = media_server.add(SAMPLE_MP4, "api-upload.mp4")
    status, body = api.post({"name": "video.download", "data": {"url": url}})
    return url, status, body


def _runs_for(instance: dg.DagsterInstance, key: str) -> list:
    return [r for r in instance.get_run_records() if r.dagster_run.tags.get("dagster/partition") == key]


def test_video_download_event_is_queued(api: Api, video_event):
    url, status, body = video_event
    assert status == 202, body
    assert body["name"] == "video.download" and body["key"].startswith("web-api-upload-")
    assert body["known"] is False and body["message"] == f"queued {body['key']}"
    row = next(r for r in api.rows() if r[0] == body["event_id"])
    assert row[1:3] == ("video.download", body["key"]) and json.loads(row[3]) == {"url": url}
    source = api.queue().get_source(body["key"])
    assert (source.kind, source.location) == ("url", url)


def test_health_without_token_and_default_bind(api: Api):
    assert api.request("GET", "/health") == (200, {"ok": True})
    assert api.host == "127.0.0.1"  # the default bind address, from the startup line
    conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
    conn.request("GET", "/events", headers=AUTH)
    assert conn.getresponse().status == 405
    conn.close()


def test_not_reachable_on_other_interfaces(api: Api):
    """The listening socket is bound to 127.0.0.1 only: read from the socket table, with no
    traffic to any address outside 127.0.0.0/8 (not even this machine's own)."""
    from igs_dagster_tests.test_api_hardening import listening_addresses

    assert listening_addresses(api.proc.pid) == [("127.0.0.1", api.port)]


_file = str(SAMPLE_MP4)
REFUSED = [
    # (id, headers, body or chunks, status, part of the error)
    ("no-token", {}, b'{"name":"system.log","data":{"action":"a","tool":"t","detail":"d"}}', 401, "bearer token"),
    ("wrong-token", {"Authorization": "Bearer not-the-token-0123456789"}, None, 401, "bearer token"),
    ("token-prefix", {"Authorization": f"Bearer {TOKEN[:-1]}"}, None, 401, "bearer token"),
    ("token-longer", {"Authorization": f"Bearer {TOKEN}x"}, None, 401, "bearer token"),
    ("basic-scheme", {"Authorization": f"Basic {TOKEN}"}, None, 401, "bearer token"),
    ("bare-token", {"Authorization": TOKEN}, None, 401, "bearer token"),
    ("empty-bearer", {"Authorization": "Bearer "}, None, 401, "bearer token"),
    ("declared-too-large", {**AUTH, "Content-Length": "10000000"}, b"{}", 413, "larger than"),
    ("chunked-too-large", AUTH, [b" " * 8192] * 10, 413, "larger than"),
    ("bad-json", AUTH, b'{"name": "video.download", "data": {', 400, "not valid JSON"),
    ("not-utf8", AUTH, b"\xff\xfe\xfa{}", 400, "not valid JSON"),
    ("deep-json", AUTH, b"[" * 50_000, 400, "not valid JSON"),
    ("empty-body", AUTH, b"", 400, "not valid JSON"),
    ("json-array", AUTH, b"[]", 400, "JSON object"),
    ("json-string", AUTH, b'"video.download"', 400, "JSON object"),
    ("json-number", AUTH, b"42", 400, "JSON object"),
    ("json-null", AUTH, b"null", 400, "JSON object"),
    ("unknown-name", AUTH, {"name": "video.delete", "data": {}}, 422, "unknown event name"),
    ("missing-name", AUTH, {"data": {"url": "https://youtu.be/dQw4w9WgXcQ"}}, 422, "unknown event name"),
    ("missing-data", AUTH, {"name": "video.download"}, 422, "Field required"),
    ("data-not-object", AUTH, {"name": "video.download", "data": "https://youtu.be/dQw4w9WgXcQ"}, 422, "invalid event"),
    ("extra-top-level", AUTH, {"name": "video.download", "data": {"url": "https://youtu.be/dQw4w9WgXcQ"}, "x": 1}, 422, "Extra inputs"),
    ("bad-url", AUTH, {"name": "video.download", "data": {"url": "ftp://example.com/v.mp4"}}, 422, "unsupported scheme"),
    ("url-credentials", AUTH, {"name": "video.download", "data": {"url": "https://u:p@example.com/v.mp4"}}, 422, "credentials"),
    ("playlist", AUTH, {"name": "video.download", "data": {"url": "https://www.youtube.com/playlist?list=PL1"}}, 422, "YouTube"),
    ("url-not-string", AUTH, {"name": "video.download", "data": {"url": 42}}, 422, "url"),
    ("file-and-text", AUTH, {"name": "transcript.process", "data": {"file": _file, "text": "hi", "title": "T"}}, 422, "exactly one"),
    ("neither-file-nor-text", AUTH, {"name": "transcript.process", "data": {"title": "T"}}, 422, "exactly one"),
    ("relative-file", AUTH, {"name": "transcript.process", "data": {"file": "clip.mp4", "title": "T"}}, 422, "absolute path"),
    ("dotdot-file", AUTH, {"name": "transcript.process", "data": {"file": "/tmp/../etc/x.mp4", "title": "T"}}, 422,
     "not a media file under the media folders"),  # `..` folded, then the one refusal (issue 23)
    ("empty-text", AUTH, {"name": "transcript.process", "data": {"text": "  ", "title": "T"}}, 422, "empty"),
    ("bad-source-label", AUTH, {"name": "transcript.process", "data": {"text": "hi", "title": "T", "source": "Pod Cast"}}, 422, "source"),
    ("empty-title", AUTH, {"name": "transcript.process", "data": {"text": "hi", "title": ""}}, 422, "title"),
    ("note-outside-vault", AUTH, {"name": "content.summarize", "data": {"note": "/etc/passwd"}}, 422, "not inside the vault"),
    ("note-missing", AUTH, {"name": "content.summarize", "data": {"note": "Resources/videos/nope.md"}}, 422, "not a readable regular file"),
    ("log-empty-action", AUTH, {"name": "system.log", "data": {"action": "", "tool": "t", "detail": "d"}}, 422, "action"),
    ("log-two-line-tool", AUTH, {"name": "system.log", "data": {"action": "a", "tool": "t\nx", "detail": "d"}}, 422, "one line"),
    ("loop-start-invalid", AUTH, {"name": "loop.start", "data": {}}, 422, "invalid event"),
]


@pytest.mark.parametrize("headers, body, status, reason", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_with_reason_and_nothing_queued(api: Api, headers, body, status, reason):
    rows_before = api.rows()
    log = api.env.vault / "system" / "system-log.jsonl"
    log_before = log.read_bytes() if log.exists() else b""
    if body is None:  # a good event, sent with a bad token
        body = {"name": "video.download", "data": {"url": "https://youtu.be/dQw4w9WgXcQ"}}
    if isinstance(body, list):
        got, answer = api.request("POST", "/events", headers=headers, chunks=body)
    else:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        got, answer = api.request("POST", "/events", raw, headers)
    assert got == status, answer
    assert set(answer) == {"error"} and reason in answer["error"] and "\n" not in answer["error"]
    assert api.rows() == rows_before
    assert (log.read_bytes() if log.exists() else b"") == log_before


def test_lowercase_bearer_scheme_is_accepted(api: Api):
    status, body = api.request("POST", "/events", json.dumps(
        {"name": "system.log", "data": {"action": "test.scheme", "tool": "pytest", "detail": "ok"}}).encode(),
        {"authorization": f"bearer {TOKEN}"})
    assert status == 200, body


def test_system_log_event_written_once(api: Api):
    marker = f"marker-{time.monotonic_ns()}"
    rows_before = api.rows()
    status, body = api.post({"name": "system.log", "data": {
        "action": "phone.note", "tool": "shortcuts", "detail": f"{marker} token={TOKEN}", "reason": "test"}})
    assert status == 200 and body == {"event_id": None, "name": "system.log", "key": None,
                                      "message": "logged", "known": False}
    lines = [json.loads(x) for x in (api.env.vault / "system" / "system-log.jsonl").read_text().splitlines()]
    mine = [x for x in lines if marker in x["detail"]]
    assert len(mine) == 1
    assert mine[0]["action"] == "phone.note" and mine[0]["tool"] == "shortcuts" and mine[0]["reason"] == "test"
    assert TOKEN not in mine[0]["detail"] and "[REDACTED:IGS_API__TOKEN]" in mine[0]["detail"]
    assert api.rows() == rows_before  # handled at once, not queued


def test_transcript_text_event_is_queued_by_claim_check(api: Api):
    text = "Ask not what your country can do for you; ask what you can do for your country."
    status, body = api.post({"name": "transcript.process", "data": {
        "text": text, "title": "Inaugural quote", "source": "podcast"}})
    assert status == 202, body
    key = body["key"]
    assert key.startswith("text-inaugural-quote-")
    assert (api.env.data / "inbox" / f"{key}.txt").read_text() == text
    row = next(r for r in api.rows() if r[0] == body["event_id"])
    assert row[1:3] == ("transcript.process", key) and text not in row[3]
    status, again = api.post({"name": "transcript.process", "data": {
        "text": text + "\n", "title": "Inaugural quote", "source": "podcast"}})
    assert status == 202 and again["key"] == key and again["known"] is True


def test_video_download_event_materializes_once(api: Api, video_event):
    from igs_dagster.cli.run_report import _sensor_cursor
    from igs_dagster.video.frontmatter import split_frontmatter

    url, _, first = video_event
    key = first["key"]
    # the same video again, another spelling: queued, but known, and no second run
    status, again = api.post({"name": "video.download", "data": {"url": url.replace("http://", "HTTP://") + "#t=3"}})
    assert status == 202 and again["key"] == key and again["known"] is True

    instance = api.env.instance()

    def finished():
        runs = [r for r in _runs_for(instance, key) if r.dagster_run.status in FINISHED]
        return runs or None

    (record,) = api.env.wait_for(finished, 300, f"the run for {key}")
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS, api.env.igs("run", record.dagster_run.run_id).stdout
    assert record.dagster_run.tags.get("dagster/sensor_name") == "igs_events"
    notes = [p for p in (api.env.vault / "Resources" / "videos").glob("*.md")
             if split_frontmatter(p.read_text())[0].get("video_id") == key]
    assert len(notes) == 1 and "ask not what your country" in notes[0].read_text().lower()

    api.env.wait_for(lambda: (_sensor_cursor(instance, "igs_events") or 0) >= again["event_id"],
                     120, "the sensor to read the second event")
    assert len(_runs_for(instance, key)) == 1

    # the note can now be re-enriched through the API
    status, body = api.post({"name": "content.summarize", "data": {"note": str(notes[0])}})
    assert status == 202 and body["key"] == key
    assert next(r for r in api.rows() if r[0] == body["event_id"])[1:3] == ("content.summarize", key)

    def summarized():
        runs = [r for r in _runs_for(instance, key) if r.dagster_run.tags.get("igs/trigger") == "content.summarize"]
        return [r for r in runs if r.dagster_run.status in FINISHED] or None

    (record,) = api.env.wait_for(summarized, 300, f"the summarize run for {key}")
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS, api.env.igs("run", record.dagster_run.run_id).stdout
    assert record.dagster_run.tags.get("igs/event") == str(body["event_id"])


def test_token_never_in_logs(api: Api):
    status = api.env.igs("status", "--json", check=True)
    assert TOKEN not in status.stdout + status.stderr
    assert TOKEN not in api.log.read_text(errors="replace")
    assert TOKEN not in api.env.daemon_log()
    assert TOKEN not in (api.env.vault / "system" / "system-log.jsonl").read_text()
    assert "POST /events" in api.log.read_text()  # the access log was there to look at

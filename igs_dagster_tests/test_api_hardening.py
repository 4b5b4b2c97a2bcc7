"""Issue 10 on a real `igs api` process (no daemon needed: everything here is refused): hostile
requests each get their one-line refusal and write nothing, idle and slow clients are dropped,
500 idle connections don't stop /health, and the server listens on loopback only (checked in
the socket table, no traffic to any other address)."""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igs_dagster_tests.dagster_env import REPO

TOKEN = "hardening-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Server:
    def __init__(self, root: Path, extra_env: dict[str, str] | None = None):
        self.root = root
        self.data, self.vault, self.outside = root / "data", root / "vault", root / "outside"
        for folder in (self.vault / "Resources" / "videos", self.outside):
            folder.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("IGS_", "DAGSTER_"))}
        self.env.update({"IGS_DATA_DIR": str(self.data), "IGS_VAULT_DIR": str(self.vault),
                         "IGS_API__TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", **(extra_env or {})})
        self.log = root / "api.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "igs_dagster.cli", "api", "--port", "0"],
                                         env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while not (m := re.search(rb"listening on http://([\d.]+):(\d+)", self.log.read_bytes())):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)
        self.host, self.port = m.group(1).decode(), int(m.group(2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            assert TOKEN not in raw.decode("utf-8", "replace")
            if not resp.getheader("content-type", "").startswith("application/json"):
                return resp.status, {"error": raw.decode("utf-8", "replace").strip()}  # from h11
            return resp.status, json.loads(raw)
        finally:
            conn.close()

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the data folder, the vault and the outside folder, with contents."""
        files = {}
        for root in (self.data, self.vault, self.outside):
            for path in sorted(root.rglob("*")) if root.exists() else []:
                if path.is_file() and not path.is_fifo():
                    files[str(path)] = path.read_bytes()
                elif not path.is_dir():
                    files[str(path)] = b"<special>"
        return files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("api-hard"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def enabled(tmp_path_factory):
    """Loops over HTTP switched on, with the `outside` folder as the only loop root."""
    root = tmp_path_factory.mktemp("api-loops")
    srv = Server(root, {"IGS_LOOP__API_ENABLED": "true",
                        "IGS_LOOP__ROOTS": json.dumps([str(root / "outside")])})
    try:
        yield srv
    finally:
        srv.stop()


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *argv], cwd=path, check=True, env=env, capture_output=True)
    return path


PRD = {"title": "pwn", "stories": [{"id": "S1", "title": "s", "acceptance_criteria": ["a"]}],
       "checks": {"test": "touch /tmp/igs-pwned-by-api"}}


@pytest.fixture(scope="module")
def targets(server: Server) -> dict[str, str]:
    return _targets(server)


def _targets(server: Server) -> dict[str, str]:
    """Real files of every kind for the hostile tables, created once per server."""
    if getattr(server, "targets", None):
        return server.targets
    o = server.outside
    repo = _repo(o / "repo")
    (o / "prd.json").write_text(json.dumps(PRD))
    (o / "bad.json").write_text("{not json")
    os.mkfifo(o / "prd.fifo")
    (o / "link.json").symlink_to(o / "prd.json")
    (o / "dir.json").mkdir()
    (o / "huge.json").write_bytes(b" " * (3 * 1024 * 1024))
    vault_fifo = server.vault / "Resources" / "videos" / "fifo.md"
    os.mkfifo(vault_fifo)
    (server.vault / "Resources" / "videos" / "nofm.md").write_text("no frontmatter")
    (server.vault / "Resources" / "videos" / "dir.md").mkdir()
    (o / "passwd-link.json").symlink_to("/etc/passwd")
    # the queue database exists before the table runs (a first good event creates it)
    assert server.request("POST", "/events", json.dumps(GOOD).encode(), AUTH)[0] == 202
    server.targets = {"repo": str(repo), "prd": str(o / "prd.json"), "bad": str(o / "bad.json"),
            "fifo": str(o / "prd.fifo"), "link": str(o / "link.json"), "dir": str(o / "dir.json"),
            "huge": str(o / "huge.json"), "vault_fifo": str(vault_fifo),
            "inbox": str(server.data / "inbox" / "x.txt"), "missing": str(o / "missing.json"),
            "passwd_link": str(o / "passwd-link.json")}
    return server.targets


def _loop(project: str, prd: str, **extra) -> dict:
    return {"name": "loop.start", "data": {"project": project, "prd": prd, **extra}}


def _summ(note: str) -> dict:
    return {"name": "content.summarize", "data": {"note": note}}


GOOD = {"name": "video.download", "data": {"url": "https://youtu.be/dQw4w9WgXcQ"}}
# (id, headers, body builder (targets -> body), status, part of the error)
HOSTILE = [
    # loop.start: every form is refused while loops over HTTP are off (the default)
    *[(f"loop-{k}", AUTH, (lambda t, k=k: _loop(t["repo"], t[k])), 422, "disabled over HTTP")
      for k in ("prd", "bad", "fifo", "link", "dir", "huge", "inbox", "vault_fifo")],
    ("loop-dev-zero", AUTH, lambda t: _loop(t["repo"], "/dev/zero"), 422, "disabled over HTTP"),
    ("loop-dev-stdin", AUTH, lambda t: _loop(t["repo"], "/dev/stdin"), 422, "disabled over HTTP"),
    ("loop-proc-environ", AUTH, lambda t: _loop(t["repo"], "/proc/self/environ"), 422, "disabled over HTTP"),
    ("loop-etc-passwd", AUTH, lambda t: _loop(t["repo"], "/etc/passwd"), 422, "disabled over HTTP"),
    ("loop-root-project", AUTH, lambda t: _loop("/", t["prd"]), 422, "disabled over HTTP"),
    ("loop-relative", AUTH, lambda t: _loop("repo", "prd.json"), 422, "disabled over HTTP"),
    ("loop-push", AUTH, lambda t: _loop(t["repo"], t["prd"], push=True), 422, "disabled over HTTP"),
    ("loop-no-token", {}, lambda t: _loop(t["repo"], t["prd"]), 401, "bearer token"),
    # content.summarize: special files and paths outside the vault
    ("note-fifo", AUTH, lambda t: _summ(t["vault_fifo"]), 422, "not a readable regular file"),
    ("note-missing", AUTH, lambda t: _summ("Resources/videos/nope.md"), 422, "not a readable regular file"),
    ("note-dir", AUTH, lambda t: _summ("Resources/videos/dir.md"), 422, "not a readable regular file"),
    ("note-dev-zero", AUTH, lambda t: _summ("/dev/zero"), 422, "not inside the vault"),
    ("note-proc", AUTH, lambda t: _summ("/proc/self/environ"), 422, "not inside the vault"),
    ("note-dotdot", AUTH, lambda t: _summ("../outside/prd.json"), 422, "not inside the vault"),
    ("note-not-md", AUTH, lambda t: _summ("Resources/videos/x.txt"), 422, "Markdown"),
    ("note-no-frontmatter", AUTH, lambda t: _summ("Resources/videos/nofm.md"), 422, "frontmatter"),
    # transcript.process with special files
    ("file-relative", AUTH, lambda t: {"name": "transcript.process", "data": {"file": "x.mp4", "title": "T"}}, 422, "absolute"),
    ("text-too-long", AUTH, lambda t: {"name": "transcript.process", "data": {"text": "x" * 70_000, "title": "T"}}, 413, "larger than"),
    # tokens
    ("token-wrong", {"Authorization": "Bearer " + "x" * 32}, lambda t: GOOD, 401, "bearer token"),
    ("token-case", {"Authorization": f"Bearer {TOKEN.upper()}"}, lambda t: GOOD, 401, "bearer token"),
    ("token-trailing-word", {"Authorization": f"Bearer {TOKEN} x"}, lambda t: GOOD, 401, "bearer token"),
    ("token-two", {"Authorization": f"Bearer {TOKEN} {TOKEN}"}, lambda t: GOOD, 401, "bearer token"),
    ("token-in-cookie", {"Cookie": f"token={TOKEN}"}, lambda t: GOOD, 401, "bearer token"),
    ("token-bearer-only", {"Authorization": "Bearer"}, lambda t: GOOD, 401, "bearer token"),
    ("token-unicode", {"Authorization": "Bearer tökén-0123456789abcdef"}, lambda t: GOOD, 401, "bearer token"),
    # bodies
    ("body-declared-huge", {**AUTH, "Content-Length": str(10**12)}, lambda t: b"{}", 413, "larger than"),
    ("body-declared-negative", {**AUTH, "Content-Length": "-1"}, lambda t: b"{}", 400, "Invalid HTTP request"),
    ("body-nested", AUTH, lambda t: b'{"a":' * 10_000, 400, "not valid JSON"),
    ("body-nul", AUTH, lambda t: b"\x00" * 100, 400, "not valid JSON"),
    ("title-escape-log", AUTH, lambda t: {"name": "system.log", "data": {"action": "a\x1b[2K", "tool": "t\nx", "detail": "d"}}, 422, "one line"),
    ("unknown-event", AUTH, lambda t: {"name": "shell.exec", "data": {"cmd": "id"}}, 422, "unknown event name"),
    ("extra-field", AUTH, lambda t: {"name": "loop.start", "data": {"project": "/", "prd": "/x", "env": {"A": "1"}}}, 422, "Extra inputs"),
]


@pytest.mark.slow
@pytest.mark.parametrize("headers, build, status, reason", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_request_is_refused_and_writes_nothing(server: Server, targets, headers, build, status, reason):
    before = server.snapshot()
    body = build(targets)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    got, answer = server.request("POST", "/events", raw, headers, timeout=15)
    assert time.monotonic() - started < 10  # a FIFO or /dev/zero never stalls a worker
    assert got == status, answer
    assert set(answer) == {"error"} and reason in answer["error"] and "\n" not in answer["error"]
    assert server.snapshot() == before
    assert not Path("/tmp/igs-pwned-by-api").exists()


# loop.start with loops over HTTP enabled: only real files under the roots get through
HOSTILE_ENABLED = [
    ("fifo", "repo", "fifo", "not a readable regular file"),
    ("dir", "repo", "dir", "not a readable regular file"),
    ("huge", "repo", "huge", "not a readable regular file"),
    ("missing", "repo", "missing", "not a readable regular file"),
    ("bad-json", "repo", "bad", "invalid JSON"),
    ("inbox", "repo", "inbox", "not under the loop roots"),
    ("passwd-link", "repo", "passwd_link", "not under the loop roots"),
    ("dev-zero", "repo", "/dev/zero", "not under the loop roots"),
    ("proc-environ", "repo", "/proc/self/environ", "not under the loop roots"),
    ("etc-passwd", "repo", "/etc/passwd", "not under the loop roots"),
    ("root-project", "/", "prd", "not under the loop roots"),
    ("data-project", "data", "prd", "not under the loop roots"),
    ("relative-prd", "repo", "prd.json", "absolute path"),
]


@pytest.mark.slow
@pytest.mark.parametrize("project, prd, reason", [c[1:] for c in HOSTILE_ENABLED], ids=[c[0] for c in HOSTILE_ENABLED])
def test_loop_start_enabled_still_refuses_outside_roots_and_special_files(enabled: Server, project, prd, reason):
    t = _targets(enabled)
    before = enabled.snapshot()
    project = {"data": str(enabled.data), "/": "/"}.get(project, t.get(project, project))
    started = time.monotonic()
    got, answer = enabled.request("POST", "/events", json.dumps(_loop(project, t.get(prd, prd))).encode(),
                                  AUTH, timeout=15)
    assert time.monotonic() - started < 10
    assert got == 422 and reason in answer["error"] and "\n" not in answer["error"], answer
    assert enabled.snapshot() == before
    assert not Path("/tmp/igs-pwned-by-api").exists()


def test_hostile_table_is_big_enough():
    assert len(HOSTILE) + len(HOSTILE_ENABLED) >= 40


@pytest.mark.slow
def test_slow_and_idle_clients_are_dropped_and_500_idle_connections_leave_health_up(server: Server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 700:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    idle = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(500)]
    try:
        slow = socket.create_connection((server.host, server.port), timeout=30)
        slow.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\nContent-Length: 100\r\n\r\n{")  # then nothing: a slow body
        started = time.monotonic()
        assert server.request("GET", "/health", timeout=10) == (200, {"ok": True})
        assert time.monotonic() - started < 5
        # the slow client is dropped after the request deadline, answering nothing
        slow.settimeout(30)
        data = slow.recv(1024)
        waited = time.monotonic() - started
        assert data == b"" and waited < 20, (data, waited)
        # and so are the idle ones
        idle[0].settimeout(30)
        assert idle[0].recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
    assert server.request("GET", "/health") == (200, {"ok": True})


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of the TCP sockets process `pid` listens on, from the socket table:
    no packet is sent to any address, loopback or not."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    bound = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                bound.append((socket.inet_ntop(family, raw), int(port, 16)))
    return bound


def test_listens_on_loopback_only(server: Server):
    assert listening_addresses(server.proc.pid) == [("127.0.0.1", server.port)]

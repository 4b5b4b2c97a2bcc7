"""`igs doctor` (issue 22): on this environment every download dependency is ok (the bundled Deno,
yt-dlp-ejs, ffmpeg, the bundled model); a stale yt-dlp warns with the update command; the usual
mistakes (a missing cookies file, an agent that is not installed, an unreachable NAS, a runtime
that is not there) each get their line and fix, and a failing one makes the exit status 1.
Cookie values never appear, only whether the file is there, readable and how old."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest

from igs_dagster import cli
from igs_dagster.video import doctor


def _doctor(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["doctor", *args])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_healthy_environment(igs_env, capsys):
    code, out = _doctor(capsys, "--json")
    report = json.loads(out)
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["yt-dlp", "JS runtime", "yt-dlp-ejs", "ffmpeg", "cookies", "archive",
                            "model", "agents", "data folder", "vault", "daemon", "webserver"]
    assert code == 0 and report["ok"] is True
    assert checks["JS runtime"]["status"] == "ok" and checks["JS runtime"]["detail"].startswith("deno 2.")
    assert checks["yt-dlp-ejs"]["status"] == "ok"
    assert checks["model"]["detail"].startswith("tiny.en (bundled)")
    assert checks["daemon"]["status"] == "warn" and "igs dev" in checks["daemon"]["fix"]

    from igs_dagster.cli.doctor import status_summary

    cached = json.loads((igs_env.data_dir / "doctor.json").read_text())
    summary = status_summary(igs_env)  # `igs status` reuses the last result: no new checks
    assert summary["checked_at"] == pytest.approx(cached["at"])
    assert summary["line"].startswith("doctor: 11 ok, 1 warn (daemon), 0 fail (checked 20")


def test_stale_ytdlp_warns_with_the_update_command():
    released = doctor.release_date(doctor._version("yt-dlp"))
    fresh = doctor.ytdlp_version(today=released + timedelta(days=10))
    stale = doctor.ytdlp_version(today=released + timedelta(days=61))
    assert fresh.status == "ok" and "10 days old" in fresh.detail
    assert stale.status == "warn" and "61 days old" in stale.detail
    assert stale.fix == ("YouTube changes often; update with: "
                         "uv lock --upgrade-package yt-dlp && uv sync")


def test_mistakes_each_get_a_line_and_fail_the_exit_status(igs_env, capsys, monkeypatch, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("IGS_YTDLP__COOKIES_FILE", str(tmp_path / "missing-cookies.txt"))
    monkeypatch.setenv("IGS_YTDLP__JS_RUNTIME", "node:/nonexistent/node")
    monkeypatch.setenv("IGS_AGENT__TOOL", "codex")
    monkeypatch.setenv("IGS_AGENT__CODEX_COMMAND", json.dumps(["/nonexistent/codex", "exec"]))
    monkeypatch.setenv("IGS_ARCHIVE__SFTP_HOST", "127.0.0.1")
    monkeypatch.setenv("IGS_ARCHIVE__SFTP_PORT", str(port))
    monkeypatch.setenv("IGS_ARCHIVE__SFTP_USER", "nas")
    monkeypatch.setenv("IGS_ARCHIVE__SFTP_KNOWN_HOSTS", str(known_hosts))
    code, out = _doctor(capsys)
    rows = {line.split()[1]: line for line in out.splitlines()
            if line.split() and line.split()[0] in ("ok", "WARN", "FAIL")}
    assert code == 1
    assert rows["cookies"].startswith("FAIL") and "missing-cookies.txt: no such file" in rows["cookies"]
    assert "FAIL" in rows["agents"] and "IGS_AGENT__TOOL=codex not found" in rows["agents"]
    assert "FAIL" in rows["archive"] and "unreachable" in rows["archive"]
    assert "WARN" in rows["JS"] and "node not found" in rows["JS"] and "deno 2." in rows["JS"]
    assert out.splitlines()[-1].startswith("doctor: ") and "3 fail (cookies, archive, agents)" in out


def test_cookies_are_described_never_shown(igs_env, capsys, monkeypatch, tmp_path):
    secret = "VERY-secret-cookie-value-123"
    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n"
                   f".example.com\tTRUE\t/\tTRUE\t0\tSID\t{secret}\n")
    monkeypatch.setenv("IGS_YTDLP__COOKIES_FILE", str(jar))
    code, out = _doctor(capsys, "--json")
    cookies = next(c for c in json.loads(out)["checks"] if c["name"] == "cookies")
    assert code == 0 and secret not in out
    assert cookies["status"] == "warn"  # none of them is YouTube's
    assert "readable, 0 days old" in cookies["detail"] and "1 cookies, 0 for youtube.com" in cookies["detail"]

"""The `igs` CLI through its real entry point (`cli.main` and the installed `igs` script):
bad input is one line on stderr, exit 2, and changes nothing; good input queues exactly what it
says; `igs status|runs|run` read a real Dagster instance with a succeeded and a failed run."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from igs_dagster import cli
from igs_dagster_tests.conftest import LOOPBACK, MEDIA_ROOTS, SAMPLE_MP4

VIDEO_ID = "dQw4w9WgXcQ"
TOKEN = "cli-test-token-0123456789abcdef"
IGS_SCRIPT = Path(sys.executable).with_name("igs")


# ---- helpers ------------------------------------------------------------------------------------

def snapshot(*roots: Path) -> dict[str, object]:
    """Every path under `roots` with its size and content hash (folders as 'dir')."""
    state: dict[str, object] = {}
    for root in roots:
        if not root.exists():
            state[str(root)] = "missing"
            continue
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                state[str(path)] = "dir"
            else:
                data = path.read_bytes()
                state[str(path)] = (len(data), hashlib.sha256(data).hexdigest())
    return state


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def queue_rows(data: Path) -> list[tuple]:
    db = data / "queue.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, name, key, data FROM events ORDER BY id").fetchall()


def sources(data: Path) -> list[tuple]:
    with sqlite3.connect(data / "queue.sqlite3") as conn:
        return conn.execute("SELECT key, kind, location, label, title FROM sources ORDER BY key").fetchall()


def write_note(vault: Path, name: str, frontmatter: str | None, body: str = "Body.\n") -> Path:
    path = vault / "Resources" / "videos" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((f"---\n{frontmatter}---\n" if frontmatter is not None else "") + body)
    return path


# ---- the world the bad-input table runs against -------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Populated data/vault folders (a queued video, notes, a log line, a Dagster instance),
    the input files the table refers to, and a scratch working directory."""
    root = tmp_path_factory.mktemp("cli-world")
    data, vault, inputs, cwd = root / "data", root / "vault", root / "inputs", root / "cwd"
    for folder in (inputs, cwd):
        folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("IGS_") or n == "DAGSTER_HOME"]:
            mp.delenv(name)
        mp.setenv("IGS_DATA_DIR", str(data))
        mp.setenv("IGS_VAULT_DIR", str(vault))
        mp.setenv("IGS_MEDIA_ROOTS", json.dumps(MEDIA_ROOTS))  # the suite's (issue 23)
        mp.setenv("IGS_NETWORK__ALLOW", json.dumps(LOOPBACK))
        mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))  # restored afterwards
        mp.chdir(cwd)
        assert cli.main(["send", f"https://youtu.be/{VIDEO_ID}"]) == 0
        assert cli.main(["log", "write", "--action", "test.setup", "--tool", "pytest", "--detail", "x"]) == 0
        assert cli.main(["status"]) == 0  # creates the Dagster instance (DAGSTER_HOME in data)
        write_note(vault, "known.md", f'video_id: "{VIDEO_ID}"\ntitle: "Known"\n')
        write_note(vault, "no-id.md", 'title: "No id"\n')
        write_note(vault, "no-frontmatter.md", None)
        write_note(vault, "bad-id.md", 'video_id: "../../etc/passwd"\n')
        write_note(vault, "unknown-id.md", 'video_id: "web-never-sent-0123456789"\n')
        write_note(vault, "bad-yaml.md", "video_id: [unclosed\n")
        (vault / "Resources" / "videos" / "notes.txt").write_text("---\nvideo_id: x\n---\n")
        (inputs / "clip.mp4").write_bytes(SAMPLE_MP4.read_bytes())
        (inputs / "empty.mp4").touch()
        (inputs / "readme.txt").write_text("not media")
        (inputs / "talk.txt").write_text("Ask not what your country can do for you.")
        (inputs / "blank.txt").write_text("  \n\n ")
        (inputs / "binary.txt").write_bytes(b"\xff\xfe\x00\x01" * 100)
        (inputs / "folder.mp4").mkdir()
        (inputs / "bad.toml").write_text("this is = = not toml\n")
        (root / "outside.md").write_text(f'---\nvideo_id: "{VIDEO_ID}"\n---\n')
        os.symlink(root / "outside.md", vault / "Resources" / "videos" / "link-out.md")
        yield {"root": root, "data": data, "vault": vault, "in": inputs, "cwd": cwd}


# (id, argv, extra environment) -- {in}, {vault}, {root} are filled from the world
BAD_INPUTS: list[tuple[str, list[str], dict[str, str]]] = [
    # commands added with feeds, search, retries and settings
    ("follow-ftp", ["follow", "ftp://example.com/feed"], {}),
    ("unfollow-unknown", ["unfollow", "https://not-followed.example/feed.xml"], {}),
    ("following-bad-flag", ["following", "--bogus"], {}),
    ("retry-bad-key", ["retry", "not-a-key!!"], {}),
    ("search-no-index", ["search", "what you can do"], {}),
    ("settings-bad-flag", ["settings", "--bogus"], {}),
    ("videos-bad-flag", ["videos", "--bogus"], {}),
    ("loop-clean-bad-flag", ["loop", "clean", "--bogus"], {}),
    ("loop-resume-unknown", ["loop", "resume", "no-such-loop"], {}),
    ("notify-timeout", ["runs"], {"IGS_NOTIFY__TIMEOUT_S": "abc"}),
    ("loop-prd-cap", ["runs"], {"IGS_LOOP__MAX_PRD_BYTES": "abc"}),
    ("feeds-interval", ["runs"], {"IGS_FEEDS__INTERVAL_S": "1"}),
    # issue 23: the address fence's allow list, private addresses, media outside the folders
    ("network-allow", ["runs"], {"IGS_NETWORK__ALLOW": '["not a/host"]'}),
    ("private-address", ["send", "http://10.1.2.3/v.mp4"], {}),
    ("loopback-integer", ["send", "http://2130706433/v.mp4"], {"IGS_NETWORK__ALLOW": "[]"}),
    ("localhost-name", ["send", "http://localhost:3000/graphql"], {"IGS_NETWORK__ALLOW": "[]"}),
    ("media-outside-folders", ["send", "{in}/clip.mp4"], {"IGS_MEDIA_ROOTS": '["{root}/other"]'}),
    # URLs and video IDs
    ("empty-url", ["send", ""], {}),
    ("blank-url", ["send", "   "], {}),
    ("ftp-scheme", ["send", "ftp://example.com/v.mp4"], {}),
    ("javascript-scheme", ["send", "javascript:alert(1)"], {}),
    ("file-scheme", ["send", "file:///etc/passwd"], {}),
    ("credentials-in-url", ["send", "https://user:pw@example.com/v.mp4"], {}),
    ("no-host", ["send", "https://"], {}),
    ("bad-port", ["send", "https://example.com:99999/v.mp4"], {}),
    ("space-in-url", ["send", "https://exa mple.com/v.mp4"], {}),
    ("control-char", ["send", "https://example.com/\x07.mp4"], {}),
    ("bad-ipv6", ["send", "http://[::1/v.mp4"], {}),
    ("too-long", ["send", "https://example.com/" + "a" * 5000], {}),
    ("youtube-short-id", ["send", "https://www.youtube.com/watch?v=abc"], {}),
    # (YouTube playlist and channel URLs are valid since `igs send` expands playlists: their
    # refusal as single videos is tested offline in test_video_ids.py)
    ("id-10-chars", ["send", "dQw4w9WgXc"], {}),
    ("host-without-scheme", ["send", "example.com/video.mp4"], {}),
    ("one-bad-of-two", ["send", f"https://youtu.be/{VIDEO_ID}", "ftp://x"], {}),
    ("dry-run-bad", ["send", "--dry-run", "gopher://x"], {}),
    ("send-no-url", ["send"], {}),
    # paths
    ("dotdot-path", ["send", "../clip.mp4"], {}),
    ("dotdot-outside", ["send", "{in}/" + "../" * 40 + "etc/clip.mp4"], {}),
    ("directory", ["send", "{in}/folder.mp4"], {}),
    ("missing-file", ["send", "{in}/missing.mp4"], {}),
    ("non-media-file", ["send", "{in}/readme.txt"], {}),
    ("empty-media-file", ["send", "{in}/empty.mp4"], {}),
    ("transcript-dotdot", ["transcript", "--file", "{in}/" + "../" * 40 + "etc/clip.mp4", "--title", "T"], {}),
    ("transcript-dir", ["transcript", "--file", "{in}/folder.mp4"], {}),
    ("transcript-missing", ["transcript", "--file", "{in}/nope.wav"], {}),
    ("transcript-non-media", ["transcript", "--file", "{in}/readme.txt"], {}),
    # labels, titles, texts
    ("source-uppercase", ["transcript", "--file", "{in}/clip.mp4", "--source", "Podcast"], {}),
    ("source-empty", ["transcript", "--file", "{in}/clip.mp4", "--source", ""], {}),
    ("source-slash", ["transcript", "--file", "{in}/clip.mp4", "--source", "pod/../x"], {}),
    ("source-too-long", ["transcript", "--file", "{in}/clip.mp4", "--source", "a" * 40], {}),
    ("title-empty", ["transcript", "--file", "{in}/clip.mp4", "--title", ""], {}),
    ("title-blank", ["transcript", "--text-file", "{in}/talk.txt", "--title", "   "], {}),
    ("title-too-long", ["transcript", "--text-file", "{in}/talk.txt", "--title", "t" * 301], {}),
    ("text-missing", ["transcript", "--text-file", "{in}/missing.txt", "--title", "T"], {}),
    ("text-directory", ["transcript", "--text-file", "{in}", "--title", "T"], {}),
    ("text-binary", ["transcript", "--text-file", "{in}/binary.txt", "--title", "T"], {}),
    ("text-blank", ["transcript", "--text-file", "{in}/blank.txt", "--title", "T"], {}),
    ("file-and-text", ["transcript", "--file", "{in}/clip.mp4", "--text-file", "{in}/talk.txt"], {}),
    ("transcript-no-input", ["transcript", "--title", "T"], {}),
    # notes to summarize
    ("note-outside-vault", ["summarize", "{root}/outside.md"], {}),
    ("note-dotdot", ["summarize", "{vault}/../outside.md"], {}),
    ("note-symlink-out", ["summarize", "{vault}/Resources/videos/link-out.md"], {}),
    ("note-missing", ["summarize", "Resources/videos/missing.md"], {}),
    ("note-directory", ["summarize", "{vault}/Resources"], {}),
    ("note-not-markdown", ["summarize", "{vault}/Resources/videos/notes.txt"], {}),
    ("note-no-video-id", ["summarize", "{vault}/Resources/videos/no-id.md"], {}),
    ("note-no-frontmatter", ["summarize", "{vault}/Resources/videos/no-frontmatter.md"], {}),
    ("note-bad-yaml", ["summarize", "{vault}/Resources/videos/bad-yaml.md"], {}),
    ("note-bad-video-id", ["summarize", "{vault}/Resources/videos/bad-id.md"], {}),
    ("note-unknown-video-id", ["summarize", "{vault}/Resources/videos/unknown-id.md"], {}),
    # raw event JSON
    ("event-not-json", ["event", "{name: video.download"], {}),
    ("event-array", ["event", "[1, 2]"], {}),
    ("event-string", ["event", '"video.download"'], {}),
    ("event-unknown-name", ["event", '{"name": "video.delete", "data": {}}'], {}),
    ("event-no-data", ["event", '{"name": "video.download"}'], {}),
    ("event-bad-url", ["event", '{"name": "video.download", "data": {"url": "ftp://x"}}'], {}),
    ("event-extra-field", ["event", json.dumps({"name": "video.download", "data": {"url": f"https://youtu.be/{VIDEO_ID}", "x": 1}})], {}),
    ("event-file-and-text", ["event", json.dumps({"name": "transcript.process", "data": {"file": "{in}/clip.mp4", "text": "hi", "title": "T"}})], {}),
    ("event-relative-file", ["event", json.dumps({"name": "transcript.process", "data": {"file": "clip.mp4", "title": "T"}})], {}),
    ("event-deep-json", ["event", "[" * 100_000], {}),
    ("event-loop-invalid", ["event", '{"name": "loop.start", "data": {}}'], {}),
    # system log
    ("log-empty-action", ["log", "write", "--action", "", "--tool", "t", "--detail", "d"], {}),
    ("log-two-line-tool", ["log", "write", "--action", "a", "--tool", "t\nx", "--detail", "d"], {}),
    ("log-no-detail", ["log", "write", "--action", "a", "--tool", "t"], {}),
    ("log-tail-n-word", ["log", "tail", "-n", "abc"], {}),
    ("log-tail-n-negative", ["log", "tail", "-n", "-3"], {}),
    # runs
    ("runs-limit-zero", ["runs", "--limit", "0"], {}),
    ("run-bad-id", ["run", "../../etc"], {}),
    ("run-unknown-id", ["run", "0123abcd"], {}),
    # command line
    ("no-command", [], {}),
    ("unknown-command", ["frobnicate"], {}),
    ("unknown-option", ["send", "--fast", f"https://youtu.be/{VIDEO_ID}"], {}),
    ("api-port-range", ["api", "--port", "70000"], {}),
    ("dev-port-range", ["dev", "--port", "70000"], {}),
    ("service-unknown-kind", ["service", "install", "--kind", "upstart", "--print"], {}),
    ("status-unknown-option", ["status", "--all"], {}),
    ("doctor-unknown-option", ["doctor", "--fix"], {}),
    # coding loop
    ("loop-start-missing-prd", ["loop", "start", "--project", "{in}", "--prd", "{in}/missing-prd.json"], {}),
    ("loop-start-attempts-word", ["loop", "start", "--project", "{in}", "--prd", "{in}/talk.txt", "--max-attempts", "many"], {}),
    ("loop-cancel-unknown", ["loop", "cancel", "nosuchloop"], {}),
    ("loop-status-unknown", ["loop", "status", "nosuchloop"], {}),
    # settings (checked before any command does anything)
    ("set-backend", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_TRANSCRIBER__BACKEND": "foo"}),
    ("set-max-height-word", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_MAX_HEIGHT": "abc"}),
    ("set-max-height-range", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_MAX_HEIGHT": "99999"}),
    ("set-sftp-no-user", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_ARCHIVE__SFTP_HOST": "nas.local"}),
    ("set-unknown-nested", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_API__TOKENN": "x"}),
    ("set-group-not-json", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_ARCHIVE": "nas"}),
    ("set-agent-tool", ["log", "tail"], {"IGS_AGENT__TOOL": "gpt"}),
    ("set-api-port", ["runs"], {"IGS_API__PORT": "0"}),
    ("set-postgres-port", ["runs"], {"IGS_POSTGRES__PORT": "70000"}),
    ("set-ytdlp-runtime", ["doctor"], {"IGS_YTDLP__JS_RUNTIME": "rhino"}),
    ("set-ytdlp-sleep", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_YTDLP__SLEEP_S": "-1"}),
    ("set-ingest-max-runtime", ["send", f"https://youtu.be/{VIDEO_ID}"], {"IGS_INGEST_MAX_RUNTIME_S": "-1"}),
    ("set-config-missing", ["log", "tail"], {"IGS_CONFIG": "{root}/nope.toml"}),
    ("set-config-malformed", ["log", "tail"], {"IGS_CONFIG": "{in}/bad.toml"}),
    ("api-no-token", ["api", "--port", "0"], {}),
    ("api-short-token", ["api", "--port", "0"], {"IGS_API__TOKEN": "short-secret"}),
    ("api-blank-token", ["api", "--port", "0"], {"IGS_API__TOKEN": "   "}),
]


def _fill(text: str, world: dict) -> str:
    return text.replace("{in}", str(world["in"])).replace("{vault}", str(world["vault"])).replace(
        "{root}", str(world["root"]))


def _check_refused(code: int, out: str, err: str) -> None:
    lines = err.splitlines()
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert lines[0].startswith("igs: error: ") and len(lines[0]) > len("igs: error: ") + 5
    assert "Traceback" not in err and "Traceback" not in out
    assert not out.strip(), f"nothing on stdout for a refused command, got {out!r}"


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every command the real `igs` parser accepts, as argv prefixes (`log write`, `loop start`)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
        return
    for name, sub in subs[0].choices.items():
        yield from _leaf_commands(sub, prefix + (name,))


# commands without a bad-input case, and why
NO_BAD_INPUT_CASE = {("demo",): "takes no input (its settings are checked like every command's)"}


def test_bad_input_table_is_large_enough():
    assert len(BAD_INPUTS) >= 30
    assert len({case[0] for case in BAD_INPUTS}) == len(BAD_INPUTS)


def test_bad_input_table_covers_every_command_and_settings_group():
    """The table is measured against the real parser and the real settings model, so a new
    command or settings group without a bad-input case fails here."""
    from pydantic import BaseModel

    from igs_dagster.cli.app import build_parser
    from igs_dagster.core.settings import Settings

    commands = set(_leaf_commands(build_parser()))
    assert ("send",) in commands and ("loop", "start") in commands and len(commands) >= 15
    covered = {cmd for cmd in commands for _, argv, _ in BAD_INPUTS if tuple(argv[:len(cmd)]) == cmd}
    assert commands - covered == set(NO_BAD_INPUT_CASE), "commands without a bad-input case"
    groups = {name for name, field in Settings.model_fields.items()
              if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)}
    assert groups >= {"archive", "transcriber", "agent", "api", "postgres"}
    named = {var for _, _, env in BAD_INPUTS for var in env}
    missing = {g for g in groups if not any(v.startswith(f"IGS_{g.upper()}") for v in named)}
    assert not missing, f"settings groups without a bad-value case: {missing}"


@pytest.mark.parametrize("argv, env", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_one_line_exit_2_nothing_changed(world, capsys, monkeypatch, argv, env):
    for name, value in env.items():
        monkeypatch.setenv(name, _fill(value, world))
    watched = (world["data"], world["vault"], world["in"], world["cwd"])
    before = snapshot(*watched)
    code, out, err = run_cli(capsys, *[_fill(a, world) for a in argv])
    _check_refused(code, out, err)
    assert snapshot(*watched) == before
    assert TOKEN not in err and "short-secret" not in err


@pytest.mark.parametrize("argv, env", [
    (["send", "ftp://example.com/v.mp4"], {}),
    (["transcript", "--file", "{in}/clip.mp4", "--title", ""], {}),
    (["log", "tail", "-n", "abc"], {}),
    (["runs"], {"IGS_MAX_HEIGHT": "abc"}),
], ids=["bad-url", "empty-title", "argparse", "bad-setting"])
def test_installed_script_prints_one_line(world, argv, env):
    """The console script `igs` (pyproject [project.scripts]) in a fresh process."""
    cmd = [str(IGS_SCRIPT)] if IGS_SCRIPT.exists() else [sys.executable, "-m", "igs_dagster.cli"]
    full_env = {**os.environ, **{k: _fill(v, world) for k, v in env.items()}}
    before = snapshot(world["data"], world["vault"])
    proc = subprocess.run(cmd + [_fill(a, world) for a in argv], env=full_env, cwd=world["cwd"],
                          capture_output=True, text=True, timeout=120)
    _check_refused(proc.returncode, proc.stdout, proc.stderr)
    assert snapshot(world["data"], world["vault"]) == before


def test_unknown_top_level_igs_names_are_ignored(world, capsys, monkeypatch):
    """Decision: IGS_* names that are not settings (IGS_DEBUG, compose's IGS_IMAGE, ...) are
    ignored, as pydantic-settings does for unknown top-level env names even with extra='forbid';
    unknown names inside a group (IGS_API__TOKENN) are refused (see the table)."""
    monkeypatch.setenv("IGS_IMAGE", "igs-dagster:latest")
    monkeypatch.setenv("IGS_DEBUG", "0")
    code, out, err = run_cli(capsys, "send", "--dry-run", VIDEO_ID)
    assert (code, err) == (0, "")
    assert out.split("\t")[0] == VIDEO_ID


def test_unexpected_error_is_one_line_with_hint_traceback_on_request(world, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError(f"disk on fire\nsecond line with {TOKEN}")

    monkeypatch.setenv("IGS_API__TOKEN", TOKEN)
    monkeypatch.setattr("igs_dagster.intake.accept", boom)
    code, out, err = run_cli(capsys, "send", f"https://youtu.be/{VIDEO_ID}")
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("igs: error: unexpected RuntimeError: disk on fire")
    assert "IGS_DEBUG=1" in line and "Traceback" not in err and TOKEN not in err

    for debug in (["--debug"], []):
        if not debug:
            monkeypatch.setenv("IGS_DEBUG", "1")
        code, out, err = run_cli(capsys, *debug, "send", f"https://youtu.be/{VIDEO_ID}")
        assert code == 1
        assert "Traceback (most recent call last)" in err and "RuntimeError" in err
        assert err.splitlines()[-1].startswith("igs: error: unexpected RuntimeError")


def test_help_is_not_an_error(capsys):
    code, out, err = run_cli(capsys, "--help")
    assert code == 0 and "send" in out and not err
    code, out, err = run_cli(capsys, "send", "--help")
    assert code == 0 and "--dry-run" in out


# ---- good input ---------------------------------------------------------------------------------

YOUTUBE_FORMS = [
    VIDEO_ID,
    f"https://www.youtube.com/watch?v={VIDEO_ID}",
    f"https://www.youtube.com/watch?v={VIDEO_ID}&t=42s&list=PL0123",
    f"http://youtube.com/watch?feature=share&v={VIDEO_ID}",
    f"https://m.youtube.com/watch?v={VIDEO_ID}",
    f"https://music.youtube.com/watch?v={VIDEO_ID}",
    f"https://youtu.be/{VIDEO_ID}",
    f"https://youtu.be/{VIDEO_ID}?si=abcdef",
    f"youtu.be/{VIDEO_ID}",
    f"www.youtube.com/watch?v={VIDEO_ID}",
    f"https://www.youtube.com/shorts/{VIDEO_ID}",
    f"https://www.youtube.com/embed/{VIDEO_ID}",
    f"https://www.youtube.com/live/{VIDEO_ID}",
    f"https://www.youtube-nocookie.com/embed/{VIDEO_ID}",
    f"HTTPS://WWW.YOUTUBE.COM/watch?v={VIDEO_ID}",
    f"  https://youtu.be/{VIDEO_ID}  ",
]


def test_dry_run_one_video_id_whatever_the_url_form(igs_env, capsys):
    code, out, err = run_cli(capsys, "send", "--dry-run", *YOUTUBE_FORMS)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == len(YOUTUBE_FORMS)
    assert {line.split("\t")[0] for line in lines} == {VIDEO_ID}
    assert not igs_env.data_dir.exists() and not igs_env.vault_dir.exists()  # dry run: nothing written


def test_web_url_key_is_stable_and_file_safe(igs_env, capsys):
    forms = ["https://Example.COM:443/talks/My%20Talk.mp4#t=3", "https://example.com/talks/My%20Talk.mp4"]
    code, out, _ = run_cli(capsys, "send", "--dry-run", *forms)
    keys = {line.split("\t")[0] for line in out.splitlines()}
    assert code == 0 and len(keys) == 1
    (key,) = keys
    assert key.startswith("web-") and all(c.isalnum() or c in "-_" for c in key)


def test_send_queues_without_dagster_and_says_already_known(igs_env, capsys):
    data = igs_env.data_dir
    code, out, err = run_cli(capsys, "send", f"https://youtu.be/{VIDEO_ID}")
    assert (code, err) == (0, "") and out.splitlines()[0] == f"queued {VIDEO_ID}"
    assert out.splitlines()[1].startswith("no Dagster daemon is running here")
    code, out, err = run_cli(capsys, "send", f"https://www.youtube.com/watch?v={VIDEO_ID}&t=9s")
    assert code == 0 and "already known" in out.splitlines()[0]

    rows = queue_rows(data)
    assert [(r[1], r[2]) for r in rows] == [("video.download", VIDEO_ID)] * 2
    assert sources(data) == [(VIDEO_ID, "youtube", f"https://www.youtube.com/watch?v={VIDEO_ID}", "youtube", None)]
    assert not (data / "dagster_home").exists()  # Dagster was never needed


def test_send_several_urls_and_local_file(igs_env, capsys, tmp_path):
    clip = tmp_path / "My Clip.mp4"
    clip.write_bytes(SAMPLE_MP4.read_bytes())
    code, out, _ = run_cli(capsys, "send", VIDEO_ID, "https://example.com/a.mp4", str(clip))
    assert code == 0 and len(out.splitlines()) == 4  # + the no-daemon hint
    rows = queue_rows(igs_env.data_dir)
    keys = [r[2] for r in rows]
    assert keys[0] == VIDEO_ID and keys[1].startswith("web-a-") and keys[2].startswith("file-my-clip-")
    file_source = [s for s in sources(igs_env.data_dir) if s[0] == keys[2]][0]
    assert file_source[1:3] == ("file", str(clip.resolve()))


def test_transcript_file_and_text(igs_env, capsys, tmp_path, monkeypatch):
    data = igs_env.data_dir
    clip = tmp_path / "episode-12.mp4"
    clip.write_bytes(SAMPLE_MP4.read_bytes())
    code, out, err = run_cli(capsys, "transcript", "--file", str(clip), "--title", "Episode 12",
                             "--source", "podcast")
    assert (code, err) == (0, ""), err
    file_key = out.split()[1]
    assert (file_key, "file", str(clip), "podcast", "Episode 12") in sources(data)

    text_file = tmp_path / "meeting notes.txt"
    text_file.write_text("\ufeffWe agreed to ship on Friday.\r\nEveryone cheered.\r\n")
    code, out, err = run_cli(capsys, "transcript", "--text-file", str(text_file), "--source", "meeting")
    assert (code, err) == (0, ""), err
    text_key = out.split()[1]
    assert text_key.startswith("text-meeting-notes-")
    stored = data / "inbox" / f"{text_key}.txt"
    assert "ship on Friday" in stored.read_text()
    (row,) = [r for r in queue_rows(data) if r[2] == text_key]
    assert "ship on Friday" not in row[3]  # claim check: the queue row holds no text

    # the same text from stdin (CRLF vs LF, no BOM) is the same transcript: one key
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b"We agreed to ship on Friday.\nEveryone cheered.\n")))
    code, out, err = run_cli(capsys, "transcript", "--text-file", "-", "--title", "meeting notes",
                             "--source", "meeting")
    assert code == 0 and out.split()[1] == text_key and "already known" in out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"text")))
    code, _, err = run_cli(capsys, "transcript", "--text-file", "-")
    assert code == 2 and "--title is required" in err


def test_summarize_vault_note(igs_env, capsys, monkeypatch):
    assert run_cli(capsys, "send", VIDEO_ID)[0] == 0
    note = write_note(igs_env.vault_dir, "never-gonna.md", f'video_id: "{VIDEO_ID}"\n')
    for arg in (str(note), "Resources/videos/never-gonna.md"):  # absolute, or vault-relative
        code, out, err = run_cli(capsys, "summarize", arg)
        assert (code, err) == (0, "") and out.strip() == f"queued enrichment of {VIDEO_ID}"
    monkeypatch.chdir(note.parent)  # relative to the working directory
    assert run_cli(capsys, "summarize", note.name)[0] == 0
    rows = [r for r in queue_rows(igs_env.data_dir) if r[1] == "content.summarize"]
    assert len(rows) == 3 and {r[2] for r in rows} == {VIDEO_ID}


def test_event_command_takes_what_the_api_takes(igs_env, capsys, tmp_path):
    event = {"name": "video.download", "data": {"url": f"https://youtu.be/{VIDEO_ID}"}}
    code, out, _ = run_cli(capsys, "event", json.dumps(event), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["key"] == VIDEO_ID and result["event_id"] == 1 and result["known"] is False
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, out, _ = run_cli(capsys, "event", f"@{path}")
    assert code == 0 and "already known" in out.splitlines()[0]


def test_log_write_and_tail(igs_env, capsys, monkeypatch):
    monkeypatch.setenv("IGS_API__TOKEN", TOKEN)
    for i in range(3):
        assert run_cli(capsys, "log", "write", "--action", "test.step", "--tool", "pytest",
                       "--detail", f"line {i} token={TOKEN}", "--reason", "because")[0] == 0
    raw = igs_env.system_log.read_text()
    assert raw.count("\n") == 3 and TOKEN not in raw and "[REDACTED:IGS_API__TOKEN]" in raw

    code, out, _ = run_cli(capsys, "log", "tail", "-n", "2")
    assert code == 0 and len(out.splitlines()) == 2
    assert "line 1" in out and "line 2" in out and "test.step" in out and "(reason: because)" in out
    code, out, _ = run_cli(capsys, "log", "tail", "--json", "-n", "5")
    entries = [json.loads(x) for x in out.splitlines()]
    assert [e["detail"].split()[1] for e in entries] == ["0", "1", "2"]
    assert list(entries[0]) == ["timestamp", "action", "tool", "detail", "reason"]


def test_log_tail_follow(igs_env, capsys):
    assert run_cli(capsys, "log", "write", "--action", "a.before", "--tool", "t", "--detail", "old")[0] == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "igs_dagster.cli", "log", "tail", "-f", "--json", "-n", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert json.loads(proc.stdout.readline())["action"] == "a.before"
        assert run_cli(capsys, "log", "write", "--action", "a.after", "--tool", "t", "--detail", "new")[0] == 0
        assert json.loads(proc.stdout.readline())["action"] == "a.after"
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Traceback" not in proc.stderr.read()


# ---- igs status / runs / run against a real instance ------------------------------------------

@pytest.fixture(scope="module")
def runs_world(tmp_path_factory: pytest.TempPathFactory, media_server):
    """A Dagster instance with one succeeded ingest run and one failed (404) run."""
    from igs_dagster.core.events import VideoDownload, VideoDownloadData
    from igs_dagster.core.inbox import EventQueue
    from igs_dagster.core.settings import load_settings
    from igs_dagster.definitions import defs
    from igs_dagster.defs.instance import open_instance
    from igs_dagster.intake import accept

    root = tmp_path_factory.mktemp("cli-runs")
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("IGS_") or n == "DAGSTER_HOME"]:
            mp.delenv(name)
        mp.setenv("IGS_DATA_DIR", str(root / "data"))
        mp.setenv("IGS_VAULT_DIR", str(root / "vault"))
        mp.setenv("IGS_NETWORK__ALLOW", json.dumps(LOOPBACK))  # the media server (issue 23)
        mp.setenv("DAGSTER_HOME", str(root / "data" / "dagster_home"))  # restored afterwards
        settings = load_settings()
        instance = open_instance(settings)
        job = defs.resolve_job_def("video_ingest")
        results = {}
        for name, url in (("ok", media_server.add(SAMPLE_MP4, "report-ok.mp4")),
                          ("missing", media_server.url("report-missing.mp4"))):
            event = VideoDownload(name="video.download", data=VideoDownloadData(url=url))
            key = accept(event, settings, EventQueue(settings.queue_db)).key
            instance.add_dynamic_partitions("videos", [key])
            result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
            results[name] = (key, result.run_id, result.success)
        assert results["ok"][2] and not results["missing"][2]
        yield {"settings": settings, "instance": instance, **results}


def test_runs_table_and_json(runs_world, capsys):
    ok_key, ok_id, _ = runs_world["ok"]
    bad_key, bad_id, _ = runs_world["missing"]
    code, out, err = run_cli(capsys, "runs")
    assert (code, err) == (0, "")
    header, rule, *rows = out.splitlines()
    assert header.split()[:4] == ["RUN", "JOB", "STATUS", "PARTITION"]
    by_id = {row.split()[0]: row for row in rows}
    assert "SUCCESS" in by_id[ok_id[:8]] and ok_key in by_id[ok_id[:8]]
    assert "FAILURE" in by_id[bad_id[:8]] and "failed: video_download" in by_id[bad_id[:8]]

    code, out, _ = run_cli(capsys, "runs", "--json", "--limit", "1")
    runs = json.loads(out)
    assert code == 0 and len(runs) == 1 and runs[0]["run_id"] == bad_id  # newest first
    code, out, _ = run_cli(capsys, "runs", "--json")
    ok = next(r for r in json.loads(out) if r["run_id"] == ok_id)
    assert ok["status"] == "SUCCESS" and ok["partition"] == ok_key and ok["job"] == "video_ingest"
    steps = {s["step"]: s for s in ok["steps"]}
    assert {"video_download", "transcript", "vault_note"} <= set(steps)
    assert all(s["status"] == "SUCCESS" and s["error"] is None for s in steps.values())


def test_run_detail_shows_failed_step_with_one_line_error(runs_world, capsys):
    _, bad_id, _ = runs_world["missing"]
    code, out, err = run_cli(capsys, "run", bad_id, "--json")
    assert (code, err) == (0, "")
    detail = json.loads(out)
    assert detail["status"] == "FAILURE"
    download = next(s for s in detail["steps"] if s["step"] == "video_download")
    assert download["status"] == "FAILURE" and download["attempts"] == 1
    assert "404" in download["error"] and "\n" not in download["error"]
    assert detail["errors"]["video_download"] == download["error"]

    code, out, _ = run_cli(capsys, "run", bad_id[:8])  # a unique prefix, human table
    assert code == 0
    assert out.splitlines()[0].startswith(f"run {bad_id}") and "FAILURE" in out
    failed_row = next(line for line in out.splitlines() if line.startswith("video_download"))
    assert "404" in failed_row and "Traceback" not in out

    ok_id = runs_world["ok"][1]
    code, out, _ = run_cli(capsys, "run", ok_id)
    assert code == 0 and "SUCCESS" in out.splitlines()[0] and "vault_note" in out


def test_status_reports_daemon_queue_and_failures(runs_world, capsys):
    _, bad_id, _ = runs_world["missing"]
    code, out, err = run_cli(capsys, "status", "--json")
    assert (code, err) == (0, "")
    st = json.loads(out)
    assert st["daemon"]["running"] is False  # no daemon in this test
    assert st["queue"]["last_event_id"] == 2 and st["queue"]["waiting"] == 2  # no sensor ran
    failure = next(f for f in st["recent_failures"] if f["run_id"] == bad_id)
    assert "404" in failure["errors"]["video_download"]
    assert st["active_runs"] == []
    assert st["doctor"]["line"].startswith("doctor: ") and st["doctor"]["fail"] == []  # issue 22

    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    assert "daemon: NOT running" in out and "2 event(s) waiting" in out
    assert out.rstrip().splitlines()[-1].startswith("doctor: ")
    assert any(line.strip().startswith(bad_id[:8]) and "video_download" in line and "404" in line
               for line in out.splitlines())


def test_api_on_a_busy_port_is_one_line(world, capsys, monkeypatch):
    import socket

    monkeypatch.setenv("IGS_API__TOKEN", TOKEN)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        code, out, err = run_cli(capsys, "api", "--port", str(busy.getsockname()[1]))
    _check_refused(code, out, err)
    assert "cannot listen on 127.0.0.1" in err and TOKEN not in err

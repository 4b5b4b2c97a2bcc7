"""Issue 10, one test per finding (API-process tests are in test_api_hardening.py): the event
API can't run code, untrusted text stays inert, secrets are never written, nothing stalls.

Real parts: real git repos, real FIFOs and /dev/zero, real check commands and agent scripts,
real yt-dlp against a loopback server, the real CLI entry point."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from igs_dagster.core import fsutil, inert, redact
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import ContentSummarize, LoopStart, LoopStartData, TranscriptProcess
from igs_dagster.intake import accept
from igs_dagster.loop.checks import run_check
from igs_dagster.loop.prd import load_prd
from igs_dagster.video.daily import link_daily
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.note_slugs import note_slug
from igs_dagster.video.notes import (
    SUMMARY_HEADING,
    TRANSCRIPT_MARKER,
    enrichment_region,
    render_note,
    transcript_block,
    write_note,
)
from igs_dagster_tests.test_notes import JFK_TRANSCRIPT, make_input

HOSTILE_TITLE = "Cute cats \x1b]0;pwned\x07\x1b[1A\x1b[2K\x1b]52;c;ZWNobyBoaQ==\x07 \u202eevil\u200b"
HOSTILE_CHANNEL = "Chan <img src=http://127.0.0.1:9/px.png> ]] ![[Private]] <!--"
SECRET = "sk-live-4f9a0c1e7b2d8e6f5a3c"


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t"]


def _unescaped(markdown: str) -> str:
    """What Markdown syntax is left once backslash-escaped characters are taken out."""
    return re.sub(r"\\.", "", markdown)


def _prd(path: Path, test_cmd: str = "python -c pass") -> Path:
    path.write_text(json.dumps({
        "title": "T", "stories": [{"id": "S1", "title": "s", "acceptance_criteria": ["a"]}],
        "checks": {"test": test_cmd},
    }))
    return path


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *argv], cwd=path, check=True, env=env, capture_output=True)
    return path


def _loop_start(project: Path, prd: Path) -> LoopStart:
    return LoopStart(name="loop.start", data=LoopStartData(project=project, prd=prd))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


# ---- 1: a token holder gets a shell ---------------------------------------------------------


def test_1_loop_start_over_http_is_off_and_inbox_prds_are_refused(igs_env, tmp_path, monkeypatch):
    project = _repo(tmp_path / "proj")
    good = _prd(tmp_path / "prd.json")
    before = _files(igs_env.data_dir)
    with pytest.raises(PermanentError, match="disabled over HTTP"):
        accept(_loop_start(project, good), igs_env, origin="api")
    # the attack: a PRD stored as a pasted transcript in the data folder's inbox
    text = good.read_text()
    accepted = accept(TranscriptProcess(name="transcript.process",
                                        data={"text": text, "title": "prd"}), igs_env)
    stored = igs_env.data_dir / "inbox" / f"{accepted.key}.txt"
    assert stored.is_file()
    monkeypatch.setenv("IGS_LOOP__API_ENABLED", "true")
    monkeypatch.setenv("IGS_LOOP__ROOTS", json.dumps([str(tmp_path)]))  # data folder is inside
    from igs_dagster.core.settings import load_settings

    enabled = load_settings()
    after_inbox = _files(enabled.data_dir)
    for origin in ("api", "cli"):
        with pytest.raises(PermanentError, match="not under the loop roots"):
            accept(_loop_start(project, stored), enabled, origin=origin)
        with pytest.raises(PermanentError, match="not under the loop roots"):
            accept(_loop_start(Path("/"), good), enabled, origin=origin)
    assert _files(enabled.data_dir) == after_inbox  # nothing queued, no loop record
    assert before <= after_inbox
    # and a PRD under the roots is accepted (the switch works)
    ok = accept(_loop_start(project, good), enabled, origin="api")
    assert ok.name == "loop.start" and ok.event_id


def test_1_cli_roots_default_to_home(igs_env, tmp_path, monkeypatch):
    monkeypatch.delenv("IGS_LOOP__ROOTS")
    from igs_dagster.core.settings import load_settings

    settings = load_settings()
    assert settings.loop.roots == []
    with pytest.raises(PermanentError, match=r"not under the loop roots \(" + str(Path.home())):
        accept(_loop_start(_repo(tmp_path / "p"), _prd(tmp_path / "prd.json")), settings)


def test_1_checks_and_agents_get_the_least_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IGS_API__TOKEN", "api-token-should-never-leak-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-should-not-reach-checks")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-reach-codex")
    monkeypatch.setenv("UNRELATED_SERVICE_PASSWORD", "hunter2-unrelated")
    dump = f"{sys.executable} -c \"import os,json; print(json.dumps(sorted(os.environ)))\""
    result = run_check("test", dump, tmp_path, tmp_path / "checks", timeout_s=30)
    names = json.loads(Path(result.output_path).read_text().splitlines()[1])
    assert result.passed and "PATH" in names and "HOME" in names
    assert not [n for n in names if n.startswith("IGS_") or redact.is_secret_name(n)], names
    env = redact.child_env("codex")
    assert "OPENAI_API_KEY" in env and "ANTHROPIC_API_KEY" not in env and "IGS_API__TOKEN" not in env
    assert "UNRELATED_SERVICE_PASSWORD" not in redact.child_env("pi")


# ---- 2: terminal escapes from titles --------------------------------------------------------


def test_2_escapes_are_removed_at_ingest_and_escaped_on_output(igs_env, capsys):
    info = inert.clean_info({"title": HOSTILE_TITLE, "channel": "C\x1b[31m", "description": "a\x07\nb",
                             "chapters": [{"title": "ch\x1b]0;x\x07"}], "tags": ["t\u202e"]})
    for value in (info["title"], info["channel"], info["description"], info["chapters"][0]["title"],
                  *info["tags"]):
        assert not _controls(value), value
    assert info["description"] == "a\nb"
    from igs_dagster.cli import main
    from igs_dagster.core import system_log

    system_log.write_entry(igs_env.system_log, "video.download", "yt-dlp", f"got {HOSTILE_TITLE}")
    stored = igs_env.system_log.read_text()
    assert "\x1b" not in stored and "\\u001b" not in stored and "\u202e" not in stored
    # an old entry written raw (before this fix) is escaped when shown
    raw = {"timestamp": "2026-01-01T00:00:00Z", "action": "a", "tool": "t", "detail": "x\x1b]0;t\x07\u202e"}
    with open(igs_env.system_log, "a") as handle:
        handle.write(json.dumps(raw, ensure_ascii=False) + "\n")
    for argv in (["log", "tail"], ["log", "tail", "--json"]):
        capsys.readouterr()
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert not _controls(out), (argv, out)
        assert "\\x1b" in out or "\\u001b" in out


# ---- 3: FIFOs and /dev/zero stall the API ---------------------------------------------------


def test_3_fifo_and_dev_zero_are_refused_at_once(igs_env, tmp_path):
    fifo = tmp_path / "prd.fifo"
    os.mkfifo(fifo)
    project = _repo(tmp_path / "p")
    for bad in (fifo, Path("/dev/zero"), Path("/dev/null"), tmp_path):
        started = time.monotonic()
        with pytest.raises(PermanentError, match="not a readable regular file|not under the loop roots"):
            accept(_loop_start(project, bad), igs_env)
        assert time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(PermanentError, match="not a readable regular file"):
        load_prd(Path("/dev/zero"))
    with pytest.raises(PermanentError, match="not a readable regular file"):
        load_prd(fifo)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * 1024 * 1024))
    with pytest.raises(PermanentError, match="at most"):
        load_prd(big)
    assert time.monotonic() - started < 5
    # the note of content.summarize: a FIFO in the vault
    vault_fifo = igs_env.vault_dir / "Resources" / "videos" / "x.md"
    vault_fifo.parent.mkdir(parents=True)
    os.mkfifo(vault_fifo)
    with pytest.raises(PermanentError, match="not a readable regular file"):
        accept(ContentSummarize(name="content.summarize", data={"note": str(vault_fifo)}), igs_env)


# ---- 4: secrets in check logs ---------------------------------------------------------------


def test_4_check_logs_are_redacted_whole_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRET)
    # the check knows the secret (e.g. read from a file) and prints it, the last time split so
    # that a plain tail cut would keep its second half
    script = tmp_path / "leak.py"
    script.write_text(
        f"import sys\ns={SECRET!r}\nprint('start', s)\nprint('x' * 3990)\n"
        "sys.stdout.write(s[:10]); sys.stdout.flush(); sys.stdout.write(s[10:] + '\\n')\n"
    )
    result = run_check("test", f"{sys.executable} {script}", tmp_path, tmp_path / "out" / "checks",
                       timeout_s=30)
    log = Path(result.output_path)
    assert SECRET not in log.read_text() and "[REDACTED:MY_SERVICE_TOKEN]" in log.read_text()
    assert SECRET not in result.tail and SECRET[10:] not in result.tail
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


# ---- 5: a secret an agent writes into a note ------------------------------------------------


def test_5_agent_note_with_a_secret_is_restored_and_fails(tmp_path, monkeypatch):
    from igs_dagster.core.settings import AgentSettings
    from igs_dagster.video.enrich.agent import agent_enrich
    from igs_dagster_tests import test_enrich

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # codex's own key: it has it, it must not write it
    vault = tmp_path / "vault"
    slug = note_slug("JFK", "xJFKask_0-", vault)
    note = write_note(vault, slug, make_input(title="JFK"), JFK_TRANSCRIPT)
    original = note.read_bytes()
    test_enrich.AGENTS["leak"] = (
        "import os\n" + test_enrich.AGENTS["good"].replace(
            "REGION", "REGION.replace('## Key Points', 'key: ' + os.environ['OPENAI_API_KEY'] + "
                      "'\\n\\n## Key Points')", 1)
    )
    with pytest.raises(PermanentError, match=r"contains a secret \(OPENAI_API_KEY\); note restored"):
        agent_enrich(note, "codex", AgentSettings(timeout_s=60), work_dir=tmp_path / "work",
                     argv=[str(test_enrich._agent(tmp_path, "leak"))])
    assert note.read_bytes() == original
    assert SECRET not in (tmp_path / "work" / "agent-output.log").read_text()


# ---- 6: markup injection into notes ---------------------------------------------------------


def test_6_title_and_channel_are_inert_in_note_and_daily_line(tmp_path):
    vault = tmp_path / "vault"
    inp = make_input(title="Hi [[some-slug]] ![[Secret]] %%hide%% #tag <b>x</b>", channel=HOSTILE_CHANNEL)
    text = render_note(inp, JFK_TRANSCRIPT)
    _, body = split_frontmatter(text)
    head = body.split(SUMMARY_HEADING)[0]
    for bad in ("<img", "<!--", "![[", "[[", "%%", "<b>", "#tag"):
        assert bad not in _unescaped(head), bad
    assert "\\<img" in head and "!\\[\\[Private\\]\\]" in head
    link_daily(vault, "2026-11-24", "some-slug-other", inp.title, inp.channel, 11)
    daily = (vault / "Daily" / "2026-11-24.md").read_text()
    line = next(x for x in daily.splitlines() if x.startswith("- "))
    assert line.startswith("- [[some-slug-other]] — ") and line.count("[[") == 1
    assert not any(bad in _unescaped(line) for bad in ("<img", "<!--", "![[", "[[Private"))
    # the title above holds "[[some-slug]]": that note's own link is still added
    assert link_daily(vault, "2026-11-24", "some-slug", "Other", None, 0) is True
    assert link_daily(vault, "2026-11-24", "some-slug", "Other", None, 0) is False


# ---- 7: slugs always fit --------------------------------------------------------------------


def test_7_two_long_identical_titles_both_get_notes(tmp_path):
    vault = tmp_path / "vault"
    title = "word " * 60
    ids = ["a" * 11, "web-" + "b" * 60 + "-0123456789abcdef"]
    slugs = []
    for vid in ids:
        slug = note_slug(title, vid, vault)
        write_note(vault, slug, make_input(title=title, video_id=vid), JFK_TRANSCRIPT)
        slugs.append(slug)
    assert len(set(slugs)) == 2 and all(len(s) <= 128 for s in slugs)
    assert fsutil.fit_name("x" * 300) != fsutil.fit_name("x" * 301)


# ---- 9: probing and download size -----------------------------------------------------------


def test_9_refusals_do_not_say_whether_a_path_exists(igs_env, tmp_path):
    project = _repo(tmp_path / "p")
    exists = tmp_path / "secret-dir"
    exists.mkdir()
    messages = []
    for path in (tmp_path / "nope.json", exists, tmp_path / "nope" / "deeper.json"):
        with pytest.raises(PermanentError) as err:
            accept(_loop_start(project, path), igs_env)
        messages.append(str(err.value).replace(path.name, "NAME"))
    assert len(set(messages)) == 1, messages


def test_9_download_size_cap(media_server, tmp_path):
    from igs_dagster.video.download import download_video
    from igs_dagster_tests.conftest import SAMPLE_MP4

    url = media_server.add(SAMPLE_MP4, "capped.mp4")
    with pytest.raises(PermanentError, match=r"larger than the 0.0\d+ MB limit \(IGS_MAX_DOWNLOAD_MB\)"):
        download_video(url, tmp_path / "dl", max_bytes=50_000)
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())
    ok = download_video(url, tmp_path / "dl2", max_bytes=SAMPLE_MP4.stat().st_size + 10)
    assert ok.size == SAMPLE_MP4.stat().st_size


# ---- 10: redaction by name and by shape -----------------------------------------------------


def test_10_redaction_names_urls_and_extra_setting(monkeypatch):
    env = {
        "GITHUB_PAT": "ghp_abcdefghijklmnop",
        "DATABASE_URL": "postgres://app:s3cretpw@127.0.0.1/db",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/xyzxyzxyz",
        "SOME_KEY": "keyvalue-123",
        "DB_PASSWORD": "pw-123456",
        "CUSTOM_THING": "custom-secret-value",
        "HOME": "/home/someone",
    }
    text = " ".join(env.values())
    out = redact.Redactor(redact.secret_env(env))(text)
    for name in ("GITHUB_PAT", "DATABASE_URL", "SLACK_WEBHOOK_URL", "SOME_KEY", "DB_PASSWORD"):
        assert env[name] not in out and f"[REDACTED:{name}]" in out
    assert "custom-secret-value" in out and "/home/someone" in out
    monkeypatch.setenv("IGS_SECRET_NAMES", '["CUSTOM_*"]')
    from igs_dagster.core.settings import load_settings

    load_settings()
    assert "custom-secret-value" not in redact.Redactor(redact.secret_env(env))(text)


def test_writes_are_private(tmp_path):
    path = fsutil.atomic_write_text(tmp_path / "new" / "deeper" / "f.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


# ---- property: the note writer and the daily line with arbitrary text -----------------------

_any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=400)
_hostile = st.sampled_from([
    "---", "\n---\n", "key: value", "<!-- igs:transcript -->", "## Executive Summary", "[[x]]",
    "![[y]]", "<img src=x>", "%%", "\x1b]0;t\x07", "\u202e", "\u2028", "\x85", "\r\n", '"', "'",
    "\\", "#tag", "{a: b}", "- [[slug]]", "*", "&amp;", "\ufeff", "\x00",
])
_mixed = st.lists(st.one_of(_any_text, _hostile), max_size=8).map("".join)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=_mixed, channel=st.one_of(st.none(), _mixed), description=_mixed)
def test_property_note_and_daily_line_keep_their_shape(tmp_path, title, channel, description):
    clean_meta = inert.clean_info({"title": title, "channel": channel, "description": description})
    for inp_title, inp_channel in ((title, channel), (clean_meta["title"], clean_meta["channel"])):
        text = render_note(make_input(title=inp_title, channel=inp_channel), JFK_TRANSCRIPT)
        assert not _controls(text)
        meta, body = split_frontmatter(text)
        # exactly its keys, in order; an unknown channel is left out rather than written as null
        channel_key = ["channel"] if inert.clean_line(inp_channel) else []
        assert list(meta) == ["type", "title", "source", "source_url", "video_id", *channel_key,
                              "published", "duration", "duration_seconds", "language",
                              "archive_path", "transcribed", "enriched_by", "tags"]
        assert meta["title"] == inert.inert(inp_title, "frontmatter")
        assert meta.get("channel") == (inert.inert(inp_channel, "frontmatter") or None)
        assert enrichment_region(text) == "\n_Pending enrichment._\n\n"
        assert transcript_block(text).startswith(f"{TRANSCRIPT_MARKER}\n## Transcript\n\n> [!note]-")
        lines = body.splitlines()
        assert lines.count(SUMMARY_HEADING) == 1 and lines.count(TRANSCRIPT_MARKER) == 1
        assert len([x for x in lines if x.startswith("# ")]) == 1
        # re-rendering over the note is stable
        assert render_note(make_input(title=inp_title, channel=inp_channel), JFK_TRANSCRIPT, text) == text
    assert not _controls(clean_meta["description"])
    vault = tmp_path / f"v{threading.get_ident()}-{time.monotonic_ns()}"
    link_daily(vault, "2026-11-24", "the-slug", title, channel, 11)
    daily = (vault / "Daily" / "2026-11-24.md").read_text()
    lines = daily.splitlines()
    assert lines[:3] == ["# 2026-11-24", "", "## Videos"] and not _controls(daily)
    items = [x for x in lines if x.startswith("- ")]
    assert len(items) == 1 and items[0].startswith("- [[the-slug]]") and items[0].count("[[") == 1
    if inert.clean_line(title) not in ("", "the-slug"):  # an empty title is not repeated as " — "
        assert items[0].startswith("- [[the-slug]] — ")
    assert link_daily(vault, "2026-11-24", "the-slug", title, channel, 11) is False

"""Issue 26, item 8: the smaller things a new user met, each driven through the CLI.

- re-sending a failed URL exits 1 (as `--wait` does), not 0;
- `igs status` stops listing a failure once a retry of that video succeeded;
- the README's agent commands are the ones `igs settings` shows;
- a web address typed without its scheme gets the `https://` hint;
- a mistyped command gets "did you mean";
- `igs summarize` finds a note by its bare file name, and a missing one says where it looked;
- `igs send --wait` with no daemon says so and stops instead of waiting for ever.
(A cancelled loop's line: loop/test_loop_roles.py; pushed loop runs' RUN KEY: test_loop_push.py;
PRD errors listed in full: loop/test_prd.py; Ctrl-C during --wait: test_settings_sources.py.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from igs_dagster import cli
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import InProcess

README = Path(__file__).resolve().parent.parent / "README.md"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess.create(tmp_path, monkeypatch)


def _run_once(dep: InProcess, url: str) -> tuple[str, bool]:
    """The run the sensor would start for `igs send URL` (in this process)."""
    key, result = dep.ingest(url)
    return key, result.success


def test_a_failed_video_sent_again_exits_1(deployment, capsys, media_server):
    url = media_server.url("gone-talk.mp4")  # 404: fails at once, no retries
    key, ok = _run_once(deployment, url)
    assert not ok
    code, out, _ = run(capsys, "send", url)
    assert out.startswith(f"failed: {key}: video_download:") and "igs retry" in out
    assert code == 1  # not 0: a script sees the failure, as with --wait


@pytest.mark.slow
def test_status_forgets_a_failure_once_a_retry_fixed_it(deployment, capsys, media_server):
    url = media_server.url("late-talk.mp4")  # not there yet: 404
    key, ok = _run_once(deployment, url)
    assert not ok
    failures = json.loads(run(capsys, "status", "--json")[1])["recent_failures"]
    assert [f["partition"] for f in failures] == [key]
    media_server.add(SAMPLE_MP4, "late-talk.mp4")  # the host is back; the retry succeeds
    assert _run_once(deployment, url) == (key, True)
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["recent_failures"] == []
    assert "recent failures: 0" in run(capsys, "status")[1]
    code, out, _ = run(capsys, "send", url)
    assert code == 0 and out.startswith(f"already done: {key} → ")


def test_readme_agent_commands_are_the_defaults(igs_env, capsys):
    text = " ".join(README.read_text().split("Agent CLIs run non-interactively", 1)[1]
                    .split("Override with", 1)[0].split())
    shown = json.loads(run(capsys, "settings", "--json")[1])["agent_commands"]
    assert set(shown) == {"pi", "claude", "codex"}
    for tool, command in shown.items():
        assert f"`{command}`" in text, (tool, command, text)
    assert "--no-extensions" not in README.read_text()


@pytest.mark.parametrize("typed", ["example.com/talk.mp4", "127.0.0.1:8000/talk.mp4",
                                   "localhost:8000/talk.mp4", "www.example.org"])
def test_a_web_address_without_scheme_gets_the_https_hint(igs_env, capsys, typed):
    code, out, err = run(capsys, "send", typed)
    assert (code, out) == (2, "")
    assert err.rstrip().endswith(f"(a web address needs http:// or https:// in front: https://{typed})")


def test_a_mistyped_command_gets_did_you_mean(igs_env, capsys):
    assert run(capsys, "sned", "https://youtu.be/dQw4w9WgXcQ") == (
        2, "", "igs: error: unknown command 'sned': did you mean 'send'? (see 'igs --help')\n")
    code, _, err = run(capsys, "loop", "stauts")
    assert code == 2 and "did you mean 'status'?" in err
    code, _, err = run(capsys, "search", "--mode", "txt", "x")
    assert code == 2 and "unknown choice 'txt': did you mean 'text'?" in err


def test_summarize_finds_a_bare_note_name_and_says_where_it_looked(igs_env, capsys, monkeypatch, tmp_path):
    from igs_dagster.core.inbox import EventQueue, Source

    EventQueue(igs_env.queue_db).register_source(Source("some-talk-key", "url", "https://example.com/t.mp4", "web", None))
    note = igs_env.vault_dir / "Resources" / "videos" / "some-talk.md"
    note.parent.mkdir(parents=True)
    note.write_text('---\nvideo_id: "some-talk-key"\ntitle: "Some talk"\n---\nBody.\n')
    monkeypatch.chdir(tmp_path)  # not the vault
    for name in ("some-talk.md", "some-talk"):
        assert run(capsys, "summarize", name)[:2] == (0, "queued enrichment of some-talk-key\n")
    code, out, err = run(capsys, "summarize", "other-talk.md")
    assert (code, out) == (2, "")
    assert err == (f"igs: error: no note other-talk.md here or in the vault {igs_env.vault_dir} "
                   f"(looked for {igs_env.vault_dir / 'other-talk.md'} and "
                   f"{igs_env.vault_dir / 'Resources/videos/other-talk.md'}(.md)): "
                   "`igs videos` lists the notes\n")
    assert "not a readable regular file" not in err


def test_send_wait_without_a_daemon_says_so_and_stops(igs_env, tmp_path):
    url = "https://youtu.be/dQw4w9WgXcQ"
    env = {**os.environ, "IGS_DATA_DIR": str(igs_env.data_dir), "IGS_VAULT_DIR": str(igs_env.vault_dir)}
    try:
        proc = subprocess.run([sys.executable, "-m", "igs_dagster.cli", "send", "--wait", url],
                              env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("igs send --wait waited for a daemon that does not run")
    assert proc.returncode == 1 and proc.stderr == ""
    assert proc.stdout.splitlines() == [
        "queued dQw4w9WgXcQ",
        "dQw4w9WgXcQ: no Dagster daemon is running here: start `igs dev` or the service to process it",
        "not waiting: the video stays queued; once a daemon runs, `igs send --wait "
        "'https://www.youtube.com/watch?v=dQw4w9WgXcQ'` follows again, `igs videos` shows where "
        "they stand",
    ]
    assert re.search(r"\bigs dev\b", proc.stdout)

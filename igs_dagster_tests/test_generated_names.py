"""Issue 23, finding 6 and its "Also": every generated file and folder name avoids the device
names Windows reserves, story ids obey git's own ref rules (asked of real git), and a story
title with line breaks stays on one line in `igs loop status`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import load_settings
from igs_dagster.loop import roles
from igs_dagster.loop.prd import load_prd
from igs_dagster.video import archive, notes, screenshots
from igs_dagster.video.ids import slugify
from igs_dagster.video.note_slugs import note_slug
from igs_dagster_tests.loop.conftest import S_ADD, loop_env, make_project, run_cli, write_prd
from igs_dagster_tests.test_notes import JFK_TRANSCRIPT, make_input

# Windows' reserved device names (any case, any extension), written out independently of the
# code under test
RESERVED = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$")
TITLES = ["con", "NUL", "Aux", "com1", "LPT1", "prn", "con.txt", "Nul.tar.gz", "COM9", "lpt0",
          "AUX.", "  con  ", "Con!", "nul?", "prn.md"]


@pytest.mark.parametrize("title", TITLES)
def test_reserved_titles_make_safe_notes_archives_and_attachments(tmp_path: Path, title: str,
                                                                  monkeypatch) -> None:
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    settings = load_settings()
    vault = settings.vault_dir
    slug = note_slug(title, "vid", vault, claims=tmp_path / "claims.sqlite3")
    note = notes.write_note(vault, slug, make_input(title=title, video_id="vid"), JFK_TRANSCRIPT)
    media = tmp_path / "video.mp4"
    media.write_bytes(b"x")
    where = archive.make_archive(settings).archive([media], 2026, slug).location
    folder = screenshots.attachments_dir(vault, slug)
    names = [note.name, Path(where).name, folder.name]
    assert not [n for n in names if RESERVED.match(n)], names
    assert note.is_file() and Path(where, "video.mp4").is_file()


def test_reserved_names_are_refused_or_suffixed_everywhere_names_are_made() -> None:
    cases = 0
    for name in ("con", "CON", "nul.txt", "Com1", "lpt9.tar.gz", "aux", "prn", "conin$"):
        with pytest.raises(PermanentError, match="reserves|invalid"):
            fsutil.safe_name(name)
        assert not RESERVED.match(fsutil.fit_name(name))
        cases += 2
    for title in TITLES:
        assert not RESERVED.match(slugify(title)), title
        cases += 1
    assert slugify("con") == "con_" and slugify("Console") == "console"  # only exact names
    with pytest.raises(PermanentError):
        fsutil.safe_name("trailing.")  # Windows drops trailing dots: `a.` and `a` collide
    assert cases == 31


# ---- story ids: git's ref rules, from git itself ----------------------------------------------

def _git_accepts(story_id: str) -> bool:
    return subprocess.run(["git", "check-ref-format", f"refs/heads/agent-loop/l--skipped-{story_id}"],
                          capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("story_id", ["S1.lock", "S1.", "S1..2", "a.lock", "x/y", "S1@{x}",
                                      "con", "NUL"])
def test_story_ids_git_refuses_are_refused(tmp_path: Path, story_id: str) -> None:
    path = tmp_path / "prd.json"
    path.write_text(json.dumps({"title": "t", "checks": {"test": "true"}, "stories": [
        {"id": story_id, "title": "x", "acceptance_criteria": ["y"]}]}))
    with pytest.raises(PermanentError, match=r"stories\[0\]\.id"):
        load_prd(path)


@pytest.mark.parametrize("story_id", ["S1", "S1.2", "story_1", "a-b", "S1.locks", "v2.0-rc1"])
def test_story_ids_git_accepts_load(tmp_path: Path, story_id: str) -> None:
    assert _git_accepts(story_id)
    path = tmp_path / "prd.json"
    path.write_text(json.dumps({"title": "t", "checks": {"test": "true"}, "stories": [
        {"id": story_id, "title": "x", "acceptance_criteria": ["y"]}]}))
    assert load_prd(path).stories[0].id == story_id


def test_loop_status_shows_a_multiline_title_on_one_line(tmp_path: Path, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    project = make_project(tmp_path / "project")
    story = {**S_ADD, "title": "Add\nSTORY  S9  passed\r\nforged row\u2028x"}
    prd = write_prd(tmp_path / "prd.json", [story])
    lid = roles.start(loop_env(tmp_path), {"project": str(project), "prd": str(prd)})["loop_id"]
    code, out, err = run_cli(capsys, "loop", "status", lid, "--no-runs")
    assert (code, err) == (0, "")
    table = out.split("STORY", 1)[1].splitlines()
    rows = [line for line in table[2:] if line.strip()]
    assert len(rows) == 1 and rows[0].startswith("S1 ")
    assert "Add STORY S9 passed" in rows[0]

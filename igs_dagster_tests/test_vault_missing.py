"""Issue 26, item 1: a missing vault loses nothing. Notes ingested through the real pipeline;
the vault moved away (an unmounted disk), then emptied (a sync client re-creating the folder):
the next ingest fails with one line and creates nothing at the vault's path, `igs search`
keeps finding every note, and once the vault is back everything is found again. `igs search
--reindex` rebuilds the index from the notes on disk, with progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from igs_dagster import cli
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import InProcess

pytestmark = pytest.mark.slow
QUERY = "what you can do for your country"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media_server) -> InProcess:
    dep = InProcess.create(tmp_path, monkeypatch)
    dep.server = media_server
    return dep


def ingest(world: InProcess, name: str):
    """`igs send` of a loopback clip, then its run (in this process), as the sensor would."""
    return world.ingest(world.server.add(SAMPLE_MP4, f"{name}.mp4"))


def found(capsys) -> set[str]:
    code = cli.main(["search", QUERY, "--json", "-n", "50"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {hit["video_id"] for hit in json.loads(out)}


def failure(world: InProcess, result) -> str:
    from igs_dagster.defs.failures import run_failure_reasons

    return run_failure_reasons(world.instance, result.run_id)["vault_note"]


def test_a_vault_moved_away_or_emptied_loses_nothing(world, capsys):
    vault = world.settings.vault_dir
    keys = []
    for name in ("first-talk", "second-talk"):
        key, result = ingest(world, name)
        assert result.success
        keys.append(key)
    assert found(capsys) == set(keys)

    # 1. the vault is moved away (a disk unmounted): search still finds every note, says why
    away = world.root / "vault-away"
    shutil.move(vault, away)
    assert cli.main(["search", QUERY]) == 0
    out, err = capsys.readouterr()
    assert all(f"[[{slug}]]" in out for slug in (p.stem for p in (away / "Resources/videos").glob("*.md")))
    assert err.startswith(f"igs: warning: the vault {vault} is not there")
    assert (away / ".igs-vault").is_file()  # the marker igs put there with the first note
    # the next ingest fails at the note, with the reason, and creates no vault at that path
    late, result = ingest(world, "third-talk")
    assert not result.success
    reason = failure(world, result)
    with capsys.disabled():
        print(f"\nvault_note failed: {reason}")
    assert reason.startswith(f"the vault {vault} is missing (igs wrote notes there before; ")
    assert f"mkdir -p {vault} && touch {vault}/.igs-vault" in reason
    assert not vault.exists(), "a fresh vault was created where the old one belongs"
    # the run's end (system log, notifications) creates nothing there either
    from igs_dagster.defs.outcomes import handle_run

    handle_run(world.instance, world.settings, world.instance.get_run_by_id(result.run_id),
               "failure", _Log())
    assert not vault.exists()
    assert found(capsys) == set(keys)

    # 2. an empty folder where the vault was (a sync client re-created it): the same refusal
    vault.mkdir()
    _, result = ingest(world, "third-talk")
    assert failure(world, result).startswith(f"the vault {vault} is empty (")
    assert list(vault.iterdir()) == []
    assert found(capsys) == set(keys)

    # 3. the vault is back: every note is found, and the failed video goes through
    vault.rmdir()
    shutil.move(away, vault)
    assert found(capsys) == set(keys)
    _, result = ingest(world, "third-talk")
    assert result.success
    assert found(capsys) == {*keys, late}


def test_reindex_rebuilds_from_the_notes_with_progress(world, capsys):
    keys = [ingest(world, name)[0] for name in ("fourth-talk", "fifth-talk")]
    index_file = world.settings.data_dir / "search.sqlite3"
    index_file.unlink()  # lost, or from an older version
    for extra in index_file.parent.glob("search.sqlite3*"):
        extra.unlink()
    assert cli.main(["search", "--reindex"]) == 0
    out = capsys.readouterr().out.splitlines()
    with capsys.disabled():
        print("\n$ igs search --reindex\n" + "\n".join(out))
    slugs = [p.stem for p in sorted((world.settings.vault_dir / "Resources/videos").glob("*.md"))]
    assert out[:2] == [f"reindex 1/2: {slugs[0]}", f"reindex 2/2: {slugs[1]}"]
    assert out[-1] == "reindexed 2 notes (2 changed), dropped 0 without a note file; the index holds 2 notes"
    assert found(capsys) == set(keys)
    # a note deleted while the vault is there leaves the index on reindex (the explicit command)
    note = next((world.settings.vault_dir / "Resources/videos").glob("*.md"))
    note.unlink()
    assert cli.main(["search", "--reindex"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("reindexed 1 notes (0 changed), dropped 1")
    assert len(found(capsys)) == 1
    # the vault gone: reindex refuses (it would drop everything), one line, exit 2
    shutil.move(world.settings.vault_dir, world.root / "elsewhere")
    assert cli.main(["search", "--reindex"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("igs: error: the vault ") and err.count("\n") == 1
    assert len(found(capsys)) == 1


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = info

"""Issue 23, finding 7: the data folder is 0700 and every file in it 0600 whatever the umask.

`search.sqlite3` and `queue.sqlite3` (and their WAL/SHM files) were 0644 in a 0755 data
folder under umask 022. Checked after a full run through the CLI started with umask 022: the
demo (download from its loopback server, archive, transcription, note, enrichment, search
index, screenshots), a send to the inbox, a search, a follow; then every folder and file under
the data folder."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from igs_dagster.core.sqlite import open_db
from igs_dagster_tests.dagster_env import DagsterEnv

pytestmark = pytest.mark.slow


def _loose(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode & ~want & 0o777 or (path.is_dir() and mode & 0o077):
            found.append(f"{oct(mode)} {path.relative_to(root.parent)}")
    return found


def test_data_folder_and_files_are_private_after_a_full_run_under_umask_022(tmp_path: Path) -> None:
    env = DagsterEnv.create(tmp_path)
    del env.env["DAGSTER_HOME"]  # the demo picks the persistent home in the data folder itself
    # the data folder and home are made by the CLI below, not by the fixture
    for path in sorted(env.data.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    env.data.rmdir()

    def igs(*args: str) -> subprocess.CompletedProcess:
        return env.run("bash", "-c", 'umask 022 && exec "$0" -m igs_dagster.cli "$@"', env_python(),
                       *args, check=True, timeout=600)

    igs("demo")
    igs("send", "https://youtu.be/dQw4w9WgXcQ")
    igs("search", "what you can do for your country")
    assert (env.data / "queue.sqlite3").is_file() and list(env.data.rglob("search*.sqlite3"))
    loose = _loose(env.data)
    assert loose == [], "\n".join(loose)
    assert _loose(env.vault) == []


def env_python() -> str:
    import sys

    return sys.executable


def test_sqlite_stores_and_their_wal_files_are_0600_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with open_db(tmp_path / "data" / "queue.sqlite3", "CREATE TABLE t (x);") as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            files = sorted(p.name for p in (tmp_path / "data").iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
    finally:
        os.umask(old)
    assert files == ["queue.sqlite3", "queue.sqlite3-shm", "queue.sqlite3-wal"]
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_an_older_0755_data_folder_is_tightened_and_the_callers_umask_kept(
        tmp_path: Path, monkeypatch, capsys) -> None:
    from igs_dagster.cli.app import main

    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    monkeypatch.setenv("IGS_DATA_DIR", str(data))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    old = os.umask(0o022)
    try:
        assert main(["settings"]) == 0
        assert os.umask(0o022) == 0o022  # an in-process caller gets its own umask back
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700

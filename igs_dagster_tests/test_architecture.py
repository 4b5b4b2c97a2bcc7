"""docs/architecture.md stays true: every module it names exists, and it names every room."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "igs_dagster"
PAGE = REPO / "docs" / "architecture.md"
# `video/archive_sftp.py`, `igs_dagster_tests/test_layout.py`, `defs/system/`
NAMED = re.compile(r"(?<![\w./-])((?:[a-z_]+/)+(?:[a-z_]+\.py)?|[a-z_]+\.py)(?![\w/])")
OUTSIDE = ("igs_dagster/", "igs_dagster_tests/", "bench/", "drills/", "docs/", "scripts/")


def _named() -> set[str]:
    return set(NAMED.findall(PAGE.read_text(encoding="utf-8")))


def _rooms() -> set[str]:
    """Folders of the package that hold Python, and its top-level modules."""
    folders = {f"{p.parent.relative_to(PACKAGE).as_posix()}/" for p in PACKAGE.rglob("*.py")
               if p.parent != PACKAGE}
    return folders | {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}


def test_every_module_named_exists():
    missing = sorted(name for name in _named()
                     if not (REPO / name if name.startswith(OUTSIDE) else PACKAGE / name).exists())
    assert not missing, f"docs/architecture.md names what is not there: {missing}"


def test_every_room_is_named():
    unnamed = sorted(_rooms() - _named())
    assert not unnamed, f"rooms docs/architecture.md does not name: {unnamed}"


def test_the_checks_read_the_page_and_the_package():
    """A pattern that matched nothing would let both checks above pass whatever the page says."""
    assert "video/archive_sftp.py" in _named() and "defs/system/" in _named()
    assert not (PACKAGE / "video/no_such_room.py").exists()
    assert NAMED.findall("see `video/no_such_room.py`") == ["video/no_such_room.py"]
    assert "loop/" in _rooms() and "intake.py" in _rooms()

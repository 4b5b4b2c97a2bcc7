"""Is the vault there? Checked before anything is written into it, so a vault that is
missing or empty where notes were written before (an unmounted disk, a sync client that
re-created the folder, a folder moved away) is an error, not a fresh start: nothing creates a
new empty vault at its path, and nothing is forgotten because its files are briefly absent.

The vault holds a marker file (`.igs-vault`), written the first time igs writes there, and
the data folder records each vault path it marked (`vaults.json`). A recorded vault without
its marker is missing. A vault never recorded is new (or from before the marker): it is
adopted, unless the caller knows of notes that were written there (`expected_notes`: the
search index's count), so an upgrade does not mistake an unmounted vault for a new one.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError

MARKER = ".igs-vault"
RECORD = "vaults.json"
MARKER_TEXT = ("This folder is an igs-dagster vault: igs writes notes here only while this file "
               "is present (a vault whose marker is gone is treated as missing, not as new).\n")


class VaultMissing(PermanentError):
    """The vault is not where notes were written before; retrying now cannot help."""


def _recorded(data_dir: Path) -> list[str]:
    try:
        data = json.loads((Path(data_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return []
    vaults = data.get("vaults") if isinstance(data, dict) else None
    return [v for v in vaults if isinstance(v, str)] if isinstance(vaults, list) else []


def is_present(vault_dir: Path) -> bool:
    """The vault is where it should be (its marker is there)."""
    return (Path(vault_dir) / MARKER).is_file()


def missing_reason(vault_dir: Path, data_dir: Path,
                   expected_notes: Callable[[], int] | None = None) -> str | None:
    """Why the vault must not be written to now (None: it is present, or new)."""
    vault_dir = Path(vault_dir)
    if is_present(vault_dir):
        return None
    recorded = str(vault_dir) in _recorded(data_dir)
    notes = 0 if recorded or expected_notes is None else expected_notes()
    if not recorded and not notes:
        return None
    if not vault_dir.exists():
        state = "missing"
    elif vault_dir.is_dir() and not any(vault_dir.iterdir()):
        state = "empty"
    else:
        state = f"without its {MARKER} marker"
    known = f"{notes} notes were written there" if notes else "igs wrote notes there before"
    marker = shlex.quote(str(vault_dir / MARKER))
    return (f"the vault {vault_dir} is {state} ({known}; unmounted, moved away, not synced "
            f"yet?): nothing written. Put it back, then retry; a new vault there on purpose: "
            f"`mkdir -p {shlex.quote(str(vault_dir))} && touch {marker}`")


def require_vault(vault_dir: Path, data_dir: Path,
                  expected_notes: Callable[[], int] | None = None) -> Path:
    """The vault folder, ready to write into; VaultMissing (nothing created) when it is gone.
    A new vault is created, marked and recorded here."""
    vault_dir = Path(vault_dir)
    reason = missing_reason(vault_dir, data_dir, expected_notes)
    if reason:
        raise VaultMissing(reason)
    if not is_present(vault_dir):
        fsutil.private_dir(vault_dir)
        fsutil.atomic_write_text(vault_dir / MARKER, MARKER_TEXT)
    if str(vault_dir) not in (vaults := _recorded(data_dir)):
        fsutil.atomic_write_text(Path(data_dir) / RECORD,
                                 json.dumps({"vaults": [*vaults, str(vault_dir)]}, indent=1) + "\n")
    return vault_dir

"""The vault check every asset that writes into the vault makes first (core/vault.py), with
the search index's count of notes written there: a vault from before the marker file that is
unmounted at its first run after an upgrade is missing too, not new."""

from pathlib import Path

from igs_dagster.core.settings import Settings
from igs_dagster.core.vault import require_vault


def indexed_notes(settings: Settings) -> int:
    """How many notes of the search index live under the vault's path."""
    from igs_dagster.video.search.index import SearchIndex, index_path

    path = index_path(settings.data_dir)
    if not path.is_file():
        return 0
    with SearchIndex(path) as index:
        return sum(1 for doc in index.notes() if Path(doc.note_path).is_relative_to(settings.vault_dir))


def checked_vault(settings: Settings) -> Path:
    """The vault, present and marked; VaultMissing (a PermanentError: the step fails at once
    with the reason, nothing written) when it is missing or empty where notes were written."""
    return require_vault(settings.vault_dir, settings.data_dir, lambda: indexed_notes(settings))

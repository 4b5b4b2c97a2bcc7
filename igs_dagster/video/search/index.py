"""The search index: one SQLite file in the data folder (claim check: Dagster keeps only counts).

Tables: `notes` (one row per video: what a result shows, and all its passage vectors as one
float16 blob, so loading 1,000 notes' vectors is 1,000 rows, not 100,000), `passages` (text
and start second) and `passages_fts` (FTS5, porter stemming, kept by triggers). A note is
replaced as a whole in one transaction; an unchanged note (same digest) is left alone.
Beside it, `search.sqlite3-vectors-<key>.npy`: every vector as one float32 matrix, a cache
derived from the blobs (rebuilt when they change) that each process memory-maps.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from igs_dagster.core import fsutil
from igs_dagster.video.search.passages import Passage

SCHEMA_VERSION = 1
INDEX_NAME = "search.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    video_id TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    channel TEXT,
    day TEXT,
    source_url TEXT,
    note_path TEXT NOT NULL,
    digest TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    vectors BLOB
);
CREATE INDEX IF NOT EXISTS notes_day ON notes(day);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    video_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    start REAL,
    text TEXT NOT NULL,
    anchors TEXT
);
CREATE INDEX IF NOT EXISTS passages_video ON passages(video_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, content='passages', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS passages_ai AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS passages_ad AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


@dataclass(frozen=True)
class NoteDoc:
    """What the index keeps about a note besides its passages."""

    video_id: str
    slug: str
    title: str
    note_path: str
    channel: str | None = None
    day: str | None = None  # published date, else the transcribed date (YYYY-MM-DD)
    source_url: str | None = None


def index_path(data_dir: Path) -> Path:
    return Path(data_dir) / INDEX_NAME


def digest_of(doc: NoteDoc, passages: list[Passage], model: str) -> str:
    payload = json.dumps([asdict(doc), [(p.start, p.text) for p in passages], model])
    return hashlib.sha256(payload.encode()).hexdigest()


class SearchIndex:
    """A connection to the index file (created on first use). Thread-safe for one process;
    several processes may write: SQLite serialises them (WAL, 30 s busy timeout)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._matrix_cache: tuple[int, np.ndarray, np.ndarray, list[str]] | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ writes

    def current_digest(self, video_id: str) -> str | None:
        rows = self.execute("SELECT digest FROM notes WHERE video_id = ?", (video_id,))
        return rows[0][0] if rows else None

    def upsert(self, doc: NoteDoc, passages: list[Passage], vectors: np.ndarray | None,
               digest: str) -> None:
        """Replace the note's row and passages in one transaction."""
        if vectors is not None and len(vectors) != len(passages):
            raise ValueError("one vector per passage")
        blob = None if vectors is None else np.asarray(vectors, dtype=np.float16).tobytes()
        with self._lock, self._db:
            self._db.execute("DELETE FROM passages WHERE video_id = ?", (doc.video_id,))
            self._db.execute("DELETE FROM notes WHERE video_id = ?", (doc.video_id,))
            (first,) = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM passages").fetchone()
            self._db.executemany(
                "INSERT INTO passages(id, video_id, ord, start, text, anchors) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(first + i, doc.video_id, i, p.start, p.text,
                  json.dumps(p.anchors) if len(p.anchors) > 1 else None)
                 for i, p in enumerate(passages)],
            )
            self._db.execute(
                "INSERT INTO notes(video_id, slug, title, channel, day, source_url, note_path, "
                "digest, first_id, count, vectors) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (doc.video_id, doc.slug, doc.title, doc.channel, doc.day, doc.source_url,
                 doc.note_path, digest, first, len(passages), blob),
            )

    def remove(self, video_id: str) -> bool:
        with self._lock, self._db:
            self._db.execute("DELETE FROM passages WHERE video_id = ?", (video_id,))
            cur = self._db.execute("DELETE FROM notes WHERE video_id = ?", (video_id,))
            return cur.rowcount > 0

    def prune_missing(self, vault_dir: Path) -> list[str]:
        """Forget notes of `vault_dir` whose file the user deleted: only while the vault is
        there (its marker, core/vault.py), so a vault that is unmounted, moved away or not
        synced yet loses nothing from the index; notes of another vault path stay until
        `igs search --reindex`."""
        from igs_dagster.core.vault import is_present

        if not is_present(vault_dir):
            return []
        gone = [vid for vid, path in self.execute("SELECT video_id, note_path FROM notes")
                if Path(path).is_relative_to(vault_dir) and not Path(path).is_file()]
        for vid in gone:
            self.remove(vid)
        return gone

    # ------------------------------------------------------------------ reads

    def notes(self) -> list[NoteDoc]:
        rows = self.execute(
            "SELECT video_id, slug, title, note_path, channel, day, source_url FROM notes"
        )
        return [NoteDoc(*row) for row in rows]

    def note(self, video_id: str) -> NoteDoc | None:
        rows = self.execute(
            "SELECT video_id, slug, title, note_path, channel, day, source_url FROM notes "
            "WHERE video_id = ?", (video_id,))
        return NoteDoc(*rows[0]) if rows else None

    def stats(self) -> dict:
        (notes, passages) = self.execute(
            "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM notes")[0]
        return {"notes": notes, "passages": passages,
                "bytes": self.path.stat().st_size if self.path.exists() else 0}

    def _version(self) -> int:
        (version,) = self.execute("PRAGMA data_version")[0]
        (changes,) = (self._db.total_changes,)
        return hash((version, changes))

    def matrix(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(passage ids, float32 vectors, video id per row) of every note with vectors.

        Cached in this process until the database changes, and across processes in a float32
        file beside the index (`search.sqlite3-vectors-<key>.npy`, memory-mapped): a fresh
        `igs search` maps it in milliseconds instead of unpacking every note's float16 blob
        (0.4-0.6 s at 1,000 notes). The key hashes the notes' (id, first row, count, digest)
        list, so any change to the vectors makes a new file and the old one goes."""
        version = self._version()
        if self._matrix_cache and self._matrix_cache[0] == version:
            return self._matrix_cache[1:]
        where = "FROM notes WHERE vectors IS NOT NULL AND count > 0 ORDER BY first_id"
        listing = self.execute(f"SELECT video_id, first_id, count, digest {where}")
        mat = self._load_vectors(listing)
        if mat is None:  # one read of listing and blobs together: a consistent snapshot
            rows = self.execute(f"SELECT video_id, first_id, count, digest, vectors {where}")
            listing = [row[:4] for row in rows]
            mat = (np.concatenate([np.frombuffer(row[4], dtype=np.float16).reshape(row[2], -1)
                                   for row in rows]).astype(np.float32)
                   if rows else np.zeros((0, 384), np.float32))
            self._save_vectors(listing, mat)
        owners = [vid for vid, _, count, _ in listing for _ in range(count)]
        pid = (np.concatenate([np.arange(first, first + count) for _, first, count, _ in listing])
               if listing else np.zeros(0, np.int64))
        self._matrix_cache = (version, pid, mat, owners)
        return pid, mat, owners

    def _vectors_file(self, listing: list[tuple]) -> Path:
        key = hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]
        return self.path.with_name(f"{self.path.name}-vectors-{key}.npy")

    def _load_vectors(self, listing: list[tuple]) -> np.ndarray | None:
        try:
            mat = np.load(self._vectors_file(listing), mmap_mode="r")
        except (OSError, ValueError):
            return None
        rows = sum(count for _, _, count, _ in listing)
        return mat if mat.dtype == np.float32 and mat.ndim == 2 and len(mat) == rows else None

    def _save_vectors(self, listing: list[tuple], mat: np.ndarray) -> None:
        """Write the cache file (atomically) and remove older ones; a read-only or full disk
        only costs the next process the slower load."""
        target = self._vectors_file(listing)
        try:
            with fsutil.atomic_writer(target) as handle:
                np.save(handle, mat)
            for old in self.path.parent.glob(f"{self.path.name}-vectors-*.npy"):
                if old != target:
                    old.unlink(missing_ok=True)
        except OSError:
            pass

    def note_vectors(self, video_id: str) -> np.ndarray | None:
        rows = self.execute("SELECT count, vectors FROM notes WHERE video_id = ?", (video_id,))
        if not rows or rows[0][1] is None:
            return None
        count, blob = rows[0]
        return np.frombuffer(blob, dtype=np.float16).reshape(count, -1).astype(np.float32)

    def passages_of(self, video_id: str) -> list[tuple[int, float | None, str]]:
        return self.execute(
            "SELECT id, start, text FROM passages WHERE video_id = ? ORDER BY ord", (video_id,))

"""Archive into a local (or mounted) folder: `{root}/{year}/{slug}/{name}` with its sha256
sidecar beside each file (video/archive_files.py), each file written to a temp name and renamed
into place (core/fsutil)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.video.archive_files import (
    CHUNK,
    ArchiveResult,
    ArchiveTarget,
    Item,
    Progress,
    ProgressCallback,
    copy_each,
    parse_sidecar,
    sent_as_planned,
    sha256_file,
    sidecar_name,
    sidecar_text,
    verify_problem,
)


class LocalArchive(ArchiveTarget):
    """Archive into a local (or mounted) folder: `{root}/{year}/{slug}/{name}`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def _copy_all(self, items: list[Item], year: str, slug: str,
                  on_progress: ProgressCallback | None) -> ArchiveResult:
        self.root.mkdir(parents=True, exist_ok=True)
        folder = fsutil.inside(self.root, year, slug)
        folder.mkdir(parents=True, exist_ok=True)

        def dest(item: Item) -> Path:
            return fsutil.inside(folder, item.name)

        def copy(item: Item, progress: Progress) -> int:
            sidecar = folder / sidecar_name(item.name)
            sidecar.unlink(missing_ok=True)
            digest = hashlib.sha256()
            with fsutil.atomic_writer(dest(item)) as out, open(item.path, "rb") as inp:
                while block := inp.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                sent_as_planned(item, digest)  # raising here leaves `dest` as it was
            fsutil.atomic_write_text(sidecar, sidecar_text(item.sha256, item.name))
            return item.size

        return copy_each(
            items, ArchiveResult(location=str(folder)), on_progress,
            where=lambda item: str(dest(item)),
            same=lambda item: self._same(dest(item), folder / sidecar_name(item.name), item),
            copy=copy)

    def _problems(self, items: list[Item], year: str, slug: str) -> Iterator[str | None]:
        folder = fsutil.inside(self.root, year, slug)
        for item in items:
            dest, sidecar = folder / item.name, folder / sidecar_name(item.name)
            recorded = parse_sidecar(sidecar.read_text()) if sidecar.is_file() else None
            yield verify_problem(item, dest.stat().st_size if dest.is_file() else None,
                                 recorded, lambda dest=dest: sha256_file(dest), "the archive",
                                 "in the archive")

    @staticmethod
    def _same(dest: Path, sidecar: Path, item: Item) -> bool:
        if not dest.is_file() or dest.stat().st_size != item.size:
            return False
        recorded = parse_sidecar(sidecar.read_text()) if sidecar.is_file() else None
        if recorded is not None:
            return recorded == item.sha256
        if sha256_file(dest) != item.sha256:
            return False
        fsutil.atomic_write_text(sidecar, sidecar_text(item.sha256, item.name))
        return True

"""Archive downloaded media to the NAS over SFTP (video/archive_sftp.py), or to a local folder
(video/archive_local.py): `make_archive` picks the one the settings name.

Layout: `{root}/{year}/{slug}/{file name}`, with a sha256 sidecar `.{file name}.sha256`
(`sha256sum` format) next to each file, the hash of the bytes actually written, hashed while
they are sent (video/archive_files.py). `verify` (the `video_archive_check`) compares the size
of each copy and that sidecar with the local file, and reads a copy back only when it has no
sidecar (archived by an older version).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from igs_dagster.video.archive_local import LocalArchive
from igs_dagster.video.archive_sftp import SftpArchive

if TYPE_CHECKING:
    from igs_dagster.core.settings import Settings


def make_archive(settings: Settings) -> LocalArchive | SftpArchive:
    """The NAS (SFTP) when `archive.sftp_host` is set, else the local archive folder."""
    cfg = settings.archive
    if cfg.sftp_host:
        return SftpArchive(
            host=cfg.sftp_host,
            port=cfg.sftp_port,
            user=cfg.sftp_user or "",
            key_path=cfg.sftp_key.expanduser() if cfg.sftp_key else None,
            known_hosts=cfg.sftp_known_hosts.expanduser(),
            remote_root=cfg.sftp_root,
        )
    return LocalArchive(settings.archive_dir)


def download_files(video_download: dict, *, present_only: bool = False) -> tuple[list[Path], int]:
    """The files a download made (media, info, thumbnail, text) and the year folder they go to:
    what `video_archive` sends and its check verifies."""
    files = [Path(p) for p in (
        video_download.get("video_path"), video_download.get("info_path"),
        video_download.get("thumbnail_path"), video_download.get("text_path"),
    ) if p and (not present_only or Path(p).is_file())]
    return files, int((video_download.get("upload_date") or date.today().isoformat())[:4])

"""Archive to real SFTP servers (asyncssh in-process, system OpenSSH sshd) and a local folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import load_settings
from igs_dagster.video.archive import make_archive
from igs_dagster.video.archive_files import ArchiveResult
from igs_dagster.video.archive_local import LocalArchive
from igs_dagster.video.archive_sftp import ArchiveUnavailable, SftpArchive
from igs_dagster_tests.sshd import AsyncsshSftpServer, OpenSshServer, new_key

MB = 1024 * 1024


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Nas:
    server: AsyncsshSftpServer | OpenSshServer
    root: str  # remote archive root

    def archive(self, **overrides: object) -> SftpArchive:
        s = self.server
        args: dict = dict(
            host=s.host,
            port=s.port,
            user=s.user,
            key_path=s.client_key,
            known_hosts=s.known_hosts,
            remote_root=self.root,
            timeout=5,
        )
        args.update(overrides)
        return SftpArchive(**args)

    def disk(self, *parts: str) -> Path:
        """Where a remote path under the archive root lies on the server's disk."""
        return self.server.local_path("/".join([self.root, *parts]))

    def written(self) -> list[Path]:
        return [p for p in self.server.root.rglob("*") if p.is_file()]


@pytest.fixture(params=["asyncssh", "openssh"])
def nas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Nas]:
    if request.param == "asyncssh":
        with AsyncsshSftpServer(tmp_path / "asyncssh") as server:
            yield Nas(server, "/videos")
    else:
        with OpenSshServer(tmp_path / "openssh") as server:
            yield Nas(server, server.remote_root + "/videos")


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[Nas]:
    """The asyncssh server only: it can cut connections and go down and up."""
    with AsyncsshSftpServer(tmp_path / "asyncssh") as server:
        yield Nas(server, "/videos")


@pytest.fixture
def media(tmp_path: Path, sample_mp4: Path) -> list[Path]:
    folder = tmp_path / "media"
    folder.mkdir()
    video = folder / "abc123.mp4"
    video.write_bytes(os.urandom(3 * MB + 123))
    audio = folder / "abc123.m4a"
    audio.write_bytes(os.urandom(1 * MB))
    sample = shutil.copyfile(sample_mp4, folder / "jfk-inaugural.mp4")
    return [video, audio, Path(sample)]


def test_upload_verify_then_skip(nas: Nas, media: list[Path]) -> None:
    calls: list[tuple[str, int, int]] = []
    result = nas.archive().archive(media, 2026, "my-video", on_progress=lambda *a: calls.append(a))

    assert result.uploaded == 3 and result.skipped == 0
    assert result.bytes_sent == sum(p.stat().st_size for p in media)
    s = nas.server
    assert result.location == f"sftp://{s.user}@127.0.0.1:{s.port}{nas.root}/2026/my-video"
    assert result.files == [f"{nas.root}/2026/my-video/{p.name}" for p in media]
    for path in media:
        on_disk = nas.disk("2026", "my-video", path.name)
        assert on_disk.read_bytes() == path.read_bytes()
        sidecar = on_disk.with_name(f".{path.name}.sha256")
        assert sidecar.read_text() == f"{sha(path)}  {path.name}\n"
        assert (path.name, path.stat().st_size, path.stat().st_size) in calls
    assert not [p for p in nas.written() if p.name.endswith(".part")]

    again = nas.archive().archive(media, 2026, "my-video")
    assert (again.uploaded, again.skipped, again.bytes_sent) == (0, 3, 0)
    assert again.to_json() == {
        "location": result.location,
        "files": result.files,
        "uploaded": 0,
        "skipped": 3,
        "bytes_sent": 0,
    }


def test_changed_file_is_uploaded_again(nas: Nas, media: list[Path]) -> None:
    nas.archive().archive(media, 2026, "clip")
    video = media[0]
    video.write_bytes(os.urandom(video.stat().st_size))  # same size, other bytes

    result = nas.archive().archive(media, 2026, "clip")

    assert (result.uploaded, result.skipped) == (1, 2)
    assert result.bytes_sent == video.stat().st_size
    on_disk = nas.disk("2026", "clip", video.name)
    assert on_disk.read_bytes() == video.read_bytes()
    assert on_disk.with_name(f".{video.name}.sha256").read_text().startswith(sha(video))


def test_unknown_host_refused(nas: Nas, media: list[Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(PermanentError, match=r"host key for \[127\.0\.0\.1\]:\d+ .* is not in"):
        nas.archive(known_hosts=empty).archive(media, 2026, "clip")
    assert nas.written() == []


def test_wrong_host_key_refused(nas: Nas, media: list[Path], tmp_path: Path) -> None:
    wrong = nas.server.write_wrong_known_hosts(tmp_path / "wrong_known_hosts")
    with pytest.raises(PermanentError, match="changed.*refusing"):
        nas.archive(known_hosts=wrong).archive(media, 2026, "clip")
    assert nas.written() == []


def test_missing_known_hosts_file_refused(nas: Nas, media: list[Path], tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="known_hosts"):
        nas.archive(known_hosts=tmp_path / "nope").archive(media, 2026, "clip")


def test_wrong_client_key_refused(nas: Nas, media: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    new_key(other)
    with pytest.raises(PermanentError, match="refused login"):
        nas.archive(key_path=other).archive(media, 2026, "clip")
    assert nas.written() == []


def _part(nas: Nas, path: Path, slug: str) -> Path:
    return nas.disk("2026", slug, f".{path.name}.{sha(path)[:16]}.part")


def test_resume_partial_part(nas: Nas, media: list[Path]) -> None:
    video = media[0]
    part = _part(nas, video, "clip")
    part.parent.mkdir(parents=True)
    part.write_bytes(video.read_bytes()[: 2 * MB])  # a previous run got this far

    result = nas.archive().archive([video], 2026, "clip")

    assert result.uploaded == 1
    assert result.bytes_sent == video.stat().st_size - 2 * MB
    assert sha(nas.disk("2026", "clip", video.name)) == sha(video)
    assert not part.exists()


def test_part_that_does_not_match_starts_over(nas: Nas, media: list[Path]) -> None:
    video = media[0]
    part = _part(nas, video, "clip")
    part.parent.mkdir(parents=True)
    part.write_bytes(os.urandom(MB))

    result = nas.archive().archive([video], 2026, "clip")

    assert result.bytes_sent == video.stat().st_size
    assert sha(nas.disk("2026", "clip", video.name)) == sha(video)


def test_server_down_is_transient_then_recovers(nas: Nas, media: list[Path]) -> None:
    port = nas.server.port
    nas.server.stop()
    with pytest.raises(ArchiveUnavailable, match="unreachable") as info:
        nas.archive().archive(media, 2026, "clip")
    assert isinstance(info.value, ConnectionError)
    assert not isinstance(info.value, PermanentError)

    nas.server.start()
    assert nas.server.port == port
    assert nas.archive().archive(media, 2026, "clip").uploaded == 3


def test_cut_mid_upload_leaves_no_final_file_and_resumes(flaky: Nas, media: list[Path]) -> None:
    video = media[0]
    flaky.server.cut_after(MB + 5000)

    with pytest.raises(ArchiveUnavailable):
        flaky.archive().archive([video], 2026, "clip")

    assert flaky.server.cuts == 1
    assert not flaky.disk("2026", "clip", video.name).exists()
    assert not flaky.disk("2026", "clip", f".{video.name}.sha256").exists()
    part = _part(flaky, video, "clip")
    assert 0 < part.stat().st_size < video.stat().st_size

    result = flaky.archive().archive([video], 2026, "clip")

    assert result.uploaded == 1
    assert 0 < result.bytes_sent < video.stat().st_size  # resumed, not started over
    assert sha(flaky.disk("2026", "clip", video.name)) == sha(video)
    assert not part.exists()


def test_cut_while_replacing_keeps_old_copy(flaky: Nas, media: list[Path]) -> None:
    video = media[0]
    flaky.archive().archive([video], 2026, "clip")
    old = video.read_bytes()
    video.write_bytes(os.urandom(len(old)))
    flaky.server.cut_after(MB)

    with pytest.raises(ArchiveUnavailable):
        flaky.archive().archive([video], 2026, "clip")

    assert flaky.disk("2026", "clip", video.name).read_bytes() == old  # never half-new
    result = flaky.archive().archive([video], 2026, "clip")
    assert result.uploaded == 1
    assert flaky.disk("2026", "clip", video.name).read_bytes() == video.read_bytes()


def test_without_posix_rename_still_replaces(flaky: Nas, media: list[Path]) -> None:
    flaky.server.posix_rename = False
    video = media[0]
    flaky.archive().archive([video], 2026, "clip")
    video.write_bytes(os.urandom(MB))

    result = flaky.archive().archive([video], 2026, "clip")

    assert result.uploaded == 1
    assert flaky.disk("2026", "clip", video.name).read_bytes() == video.read_bytes()


def test_missing_sidecar_compares_by_reading_back(flaky: Nas, media: list[Path]) -> None:
    video = media[0]
    flaky.archive().archive([video], 2026, "clip")
    on_disk = flaky.disk("2026", "clip", video.name)
    sidecar = on_disk.with_name(f".{video.name}.sha256")

    sidecar.unlink()
    result = flaky.archive().archive([video], 2026, "clip")
    assert (result.uploaded, result.skipped) == (0, 1)
    assert sidecar.read_text().startswith(sha(video))  # restored

    sidecar.unlink()
    on_disk.write_bytes(os.urandom(video.stat().st_size))  # damaged copy, same size
    result = flaky.archive().archive([video], 2026, "clip")
    assert result.uploaded == 1
    assert sha(on_disk) == sha(video)


def test_silent_server_times_out_as_transient(media: list[Path], tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with socket.socket() as listener:  # accepts TCP, never speaks SSH
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        archive = SftpArchive("127.0.0.1", port, "igs", None, known, "/videos", timeout=0.5)
        with pytest.raises(ArchiveUnavailable):
            archive.archive(media, 2026, "clip")


@pytest.mark.parametrize(
    ("year", "slug"),
    [(26, "clip"), ("20x6", "clip"), (True, "clip"), (2026, "../etc"), (2026, "a/b"), (2026, "")],
)
def test_bad_year_or_slug_refused_before_connecting(
    flaky: Nas, media: list[Path], year: object, slug: str
) -> None:
    with pytest.raises(PermanentError):
        flaky.archive().archive(media, year, slug)  # type: ignore[arg-type]
    assert flaky.server.connections == 0


def test_missing_or_duplicate_files_refused(flaky: Nas, media: list[Path], tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no such file"):
        flaky.archive().archive([tmp_path / "gone.mp4"], 2026, "clip")
    twin = tmp_path / "twin"
    twin.mkdir()
    copy = Path(shutil.copyfile(media[0], twin / media[0].name))
    with pytest.raises(PermanentError, match="two files"):
        flaky.archive().archive([media[0], copy], 2026, "clip")
    with pytest.raises(PermanentError):
        flaky.archive().archive([], 2026, "clip")
    assert flaky.server.connections == 0


def test_local_archive_round_trip(media: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "archive"
    archive = LocalArchive(root)
    calls: list[tuple[str, int, int]] = []

    result = archive.archive(media, 2026, "clip", on_progress=lambda *a: calls.append(a))

    folder = root / "2026" / "clip"
    assert isinstance(result, ArchiveResult)
    assert result.location == str(folder.resolve())
    assert (result.uploaded, result.skipped) == (3, 0)
    for path in media:
        assert (folder / path.name).read_bytes() == path.read_bytes()
        assert (folder / f".{path.name}.sha256").read_text().startswith(sha(path))
        assert calls.count((path.name, path.stat().st_size, path.stat().st_size)) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in media] + [f".{p.name}.sha256" for p in media]
    )

    again = archive.archive(media, 2026, "clip")
    assert (again.uploaded, again.skipped, again.bytes_sent) == (0, 3, 0)

    media[1].write_bytes(os.urandom(MB))
    (folder / f".{media[2].name}.sha256").unlink()
    third = archive.archive(media, 2026, "clip")
    assert (third.uploaded, third.skipped) == (1, 2)
    assert (folder / media[1].name).read_bytes() == media[1].read_bytes()
    assert (folder / f".{media[2].name}.sha256").is_file()

    with pytest.raises(PermanentError):
        archive.archive(media, 2026, "..")
    with pytest.raises(PermanentError):
        archive.archive(media, 999, "clip")


def test_make_archive_picks_backend(igs_env, tmp_path: Path) -> None:
    local = make_archive(igs_env)
    assert isinstance(local, LocalArchive) and local.root == igs_env.archive_dir

    known = tmp_path / "known_hosts"
    known.write_text("")
    settings = load_settings(
        archive={
            "sftp_host": "nas.local",
            "sftp_port": 2222,
            "sftp_user": "media",
            "sftp_known_hosts": str(known),
            "sftp_root": "/volume1/videos/",
        }
    )
    remote = make_archive(settings)
    assert isinstance(remote, SftpArchive)
    assert (remote.host, remote.port, remote.user, remote.key_path) == (
        "nas.local",
        2222,
        "media",
        None,
    )
    assert remote.known_hosts == known and remote.remote_root == "/volume1/videos"
    assert remote.location("2026", "clip") == "sftp://media@nas.local:2222/volume1/videos/2026/clip"


# --------------------------------------------------------------------------- verify (issue 24, item 8)


def test_verify_reads_no_file_back_from_the_nas(flaky: Nas, media: list[Path]) -> None:
    """`video_archive_check` compares sizes and the SHA-256 recorded as the bytes were sent:
    it reads a sidecar per file from the NAS, never the file (on main: every byte again)."""
    archive = flaky.archive()
    archive.archive(media, 2026, "clip")
    before = flaky.server.bytes_read
    assert archive.verify(media, 2026, "clip") == []
    assert flaky.server.bytes_read - before < 100 * len(media)  # sidecars: ~80 bytes each

    on_disk = flaky.disk("2026", "clip", media[0].name)
    with open(on_disk, "r+b") as handle:  # a copy cut short on the NAS
        handle.truncate(media[0].stat().st_size - 1)
    (flaky.disk("2026", "clip", f".{media[1].name}.sha256")).write_text(f"{'0' * 64}  {media[1].name}\n")
    flaky.disk("2026", "clip", media[2].name).unlink()
    problems = archive.verify(media, 2026, "clip")
    assert problems == [
        f"{media[0].name}: {media[0].stat().st_size - 1} bytes on the NAS, expected {media[0].stat().st_size}",
        f"{media[1].name}: content on the NAS differs (SHA-256)",
        f"{media[2].name}: missing from the NAS",
    ]


def test_verify_without_a_sidecar_reads_the_copy_back(flaky: Nas, media: list[Path]) -> None:
    archive = flaky.archive()
    archive.archive(media[:1], 2026, "clip")
    sidecar = flaky.disk("2026", "clip", f".{media[0].name}.sha256")
    sidecar.unlink()  # archived by an older version
    before = flaky.server.bytes_read
    assert archive.verify(media[:1], 2026, "clip") == []
    assert flaky.server.bytes_read - before == media[0].stat().st_size
    flaky.disk("2026", "clip", media[0].name).write_bytes(os.urandom(media[0].stat().st_size))
    assert archive.verify(media[:1], 2026, "clip") == [f"{media[0].name}: content on the NAS differs (SHA-256)"]


@pytest.mark.parametrize("where", ["nas", "local"])
def test_a_file_that_changes_while_it_is_archived_is_not_recorded(
    where: str, flaky: Nas, media: list[Path], tmp_path: Path
) -> None:
    """The sidecar holds the hash of the bytes actually sent, checked against the hash taken
    when the request was planned: a file rewritten after that (here: as its upload starts) fails
    the step (retried) instead of leaving a sidecar that vouches for bytes the archive does not
    hold (on main the planned hash was recorded whatever was sent)."""
    video = media[0]
    changed = []

    def rewrite(name: str, done: int, total: int) -> None:
        if not changed and name == video.name:
            video.write_bytes(os.urandom(video.stat().st_size))
            changed.append(done)

    archive = LocalArchive(tmp_path / "archive") if where == "local" else flaky.archive()
    with pytest.raises(RuntimeError, match="changed while it was archived"):
        archive.archive([video], 2026, "clip", on_progress=rewrite)
    assert changed
    assert archive.verify([video], 2026, "clip") == [f"{video.name}: missing from " + (
        "the NAS" if where == "nas" else "the archive")]
    result = archive.archive([video], 2026, "clip")  # the retry archives the file as it is now
    assert result.uploaded == 1 and archive.verify([video], 2026, "clip") == []

"""Archive to a NAS over SFTP: `{root}/{year}/{slug}/{name}` with its sha256 sidecar beside
each file (video/archive_files.py).

Uploads go to a temporary name that depends on the content, `.{name}.{sha256[:16]}.part`, in
the destination folder and are renamed into place (`posix-rename@openssh.com` when the server
has it), so a cut connection never leaves a partial file under the final name. A later run
resumes such a `.part` when its bytes match the start of the local file. A file already
archived with the same size and sha256 is skipped; the sidecar (written after the rename) lets
later runs compare without reading the file back. SFTP servers seldom offer a server-side hash
(OpenSSH has no `check-file`), so a copy without a sidecar is read back to verify it.

Host keys are always checked against a known_hosts file (paramiko `RejectPolicy`): an unknown
or changed key is a `PermanentError`, and so is an authentication failure. An unreachable NAS
(refused, timed out, reset, cut mid-transfer) raises `ArchiveUnavailable`, a `ConnectionError`,
so the Dagster step retries it.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import socket
import stat as stat_mod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import one_line
from igs_dagster.video.archive_files import (
    CHUNK,
    ArchiveResult,
    ArchiveTarget,
    Item,
    Progress,
    ProgressCallback,
    copy_each,
    hash_of,
    parse_sidecar,
    sent_as_planned,
    sidecar_name,
    sidecar_text,
    verify_problem,
)


class ArchiveUnavailable(ConnectionError):
    """The archive server cannot be reached right now (refused, timeout, reset): retry later."""


def _part_name(item: Item) -> str:
    return f".{item.name}.{item.sha256[:16]}.part"


def _fingerprint(key: paramiko.PKey) -> str:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"host key for {hostname} not in known_hosts")
        self.hostname = hostname
        self.key = key


class _RefuseUnknownHost(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, with the host and key kept for a clear message."""

    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(hostname, key)


_TRANSPORT_ERRORS = (
    paramiko.SSHException,
    EOFError,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    socket.gaierror,
)


class SftpArchive(ArchiveTarget):
    """Archive to `{remote_root}/{year}/{slug}/` on an SFTP server, host key verified."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_path: Path | None,
        known_hosts: Path,
        remote_root: str,
        timeout: float = 15,
    ) -> None:
        if not remote_root.startswith("/"):
            raise PermanentError(f"NAS root {remote_root!r} must be an absolute remote path")
        self.host = host
        self.port = int(port)
        self.user = user
        self.key_path = Path(key_path).expanduser() if key_path is not None else None
        self.known_hosts = Path(known_hosts).expanduser()
        self.remote_root = posixpath.normpath(remote_root)
        self.timeout = timeout

    @property
    def host_label(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def location(self, year: str, slug: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = posixpath.join(self.remote_root, year, slug)
        return f"sftp://{self.user}@{host}:{self.port}{path}"

    # -- connection ----------------------------------------------------------------------------

    def _connect(self) -> paramiko.SSHClient:
        if not self.known_hosts.is_file():
            raise PermanentError(
                f"NAS known_hosts file {self.known_hosts} does not exist (host keys are always verified)"
            )
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(self.known_hosts))
        except (OSError, paramiko.SSHException, ValueError) as err:
            raise PermanentError(f"cannot read NAS known_hosts {self.known_hosts}: {err}") from None
        client.set_missing_host_key_policy(_RefuseUnknownHost())
        kwargs: dict = {}
        if self.key_path is not None:
            kwargs = {
                "key_filename": str(self.key_path),
                "allow_agent": False,
                "look_for_keys": False,
            }
        try:
            timeouts = ("timeout", "banner_timeout", "auth_timeout", "channel_timeout")
            client.connect(self.host, port=self.port, username=self.user,
                           **dict.fromkeys(timeouts, self.timeout), **kwargs)
        except BaseException as err:
            client.close()
            raise self._connect_error(err) from None
        return client

    def probe(self) -> None:
        """Connect (host key verified, login) and hang up: `igs doctor`'s archive check."""
        self._connect().close()

    def _connect_error(self, err: BaseException) -> BaseException:
        if isinstance(err, _UnknownHostKey):
            return PermanentError(
                f"NAS host key for {err.hostname} ({_fingerprint(err.key)}) is not in "
                f"{self.known_hosts}; refusing (check it, then add it to known_hosts)"
            )
        if isinstance(err, paramiko.BadHostKeyException):
            return PermanentError(
                f"NAS host key for {self.host_label} changed: server sent "
                f"{_fingerprint(err.key)}, {self.known_hosts} has {_fingerprint(err.expected_key)}; "
                "refusing (possible man-in-the-middle)"
            )
        if isinstance(err, paramiko.PasswordRequiredException):
            return PermanentError(
                f"NAS key {self.key_path} is passphrase-protected; use an unencrypted key or an agent"
            )
        if isinstance(err, paramiko.AuthenticationException):
            return PermanentError(f"NAS {self.host_label} refused login for {self.user!r}: {err}")
        if isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError) and (
            self.key_path is not None and not self.key_path.is_file()
        ):
            return PermanentError(f"NAS key {self.key_path} cannot be read: {err}")
        if isinstance(err, paramiko.ssh_exception.NoValidConnectionsError) and err.errors:
            cause = next(iter(err.errors.values()))
            reason = getattr(cause, "strerror", None) or one_line(cause, 300)
            return ArchiveUnavailable(f"NAS {self.host_label} unreachable: {reason}")
        if isinstance(err, OSError | EOFError | paramiko.SSHException):
            return ArchiveUnavailable(f"NAS {self.host_label} unreachable: {one_line(err, 300)}")
        return err

    @contextmanager
    def _session(self) -> Iterator[paramiko.SFTPClient]:
        client = self._connect()
        try:
            try:
                sftp = client.open_sftp()
                sftp.get_channel().settimeout(self.timeout)
                yield sftp
            except (PermanentError, ArchiveUnavailable):
                raise
            except PermissionError as err:
                raise PermanentError(f"NAS {self.host_label} refused access: {err}") from None
            except _TRANSPORT_ERRORS as err:
                raise ArchiveUnavailable(
                    f"NAS {self.host_label} connection lost: {one_line(err, 300)}"
                ) from None
            except OSError as err:
                transport = client.get_transport()
                if transport is None or not transport.is_active():
                    raise ArchiveUnavailable(
                        f"NAS {self.host_label} connection lost: {one_line(err, 300)}"
                    ) from None
                raise
        finally:
            client.close()

    # -- archive -------------------------------------------------------------------------------

    def _copy_all(self, items: list[Item], year: str, slug: str,
                  on_progress: ProgressCallback | None) -> ArchiveResult:
        folder = posixpath.join(self.remote_root, year, slug)
        with self._session() as sftp:
            _makedirs(sftp, folder)
            listing = set(sftp.listdir(folder))
            return copy_each(
                items, ArchiveResult(location=self.location(year, slug)), on_progress,
                where=lambda item: posixpath.join(folder, item.name),
                same=lambda item: self._same(sftp, folder, listing, item),
                copy=lambda item, progress: self._upload(sftp, folder, listing, item, progress))

    def _problems(self, items: list[Item], year: str, slug: str) -> Iterator[str | None]:
        folder = posixpath.join(self.remote_root, year, slug)
        with self._session() as sftp:
            listing = set(sftp.listdir(folder)) if _exists(sftp, folder) else set()
            for item in items:
                final = posixpath.join(folder, item.name)
                size = sftp.stat(final).st_size if item.name in listing else None
                yield verify_problem(
                    item, size, self._recorded(sftp, folder, listing, item),
                    lambda final=final, size=item.size: _remote_sha256(sftp, final, size), "the NAS",
                    "on the NAS")

    @staticmethod
    def _recorded(sftp: paramiko.SFTPClient, folder: str, listing: set[str], item: Item) -> str | None:
        """The sha256 in the file's sidecar (None: no sidecar)."""
        if sidecar_name(item.name) not in listing:
            return None
        with sftp.open(posixpath.join(folder, sidecar_name(item.name)), "r") as handle:
            return parse_sidecar(handle.read(4096).decode("utf-8", "replace"))

    def _same(self, sftp: paramiko.SFTPClient, folder: str, listing: set[str], item: Item) -> bool:
        if item.name not in listing:
            return False
        final = posixpath.join(folder, item.name)
        attrs = sftp.stat(final)
        if not stat_mod.S_ISREG(attrs.st_mode or 0) or attrs.st_size != item.size:
            return False
        sidecar = posixpath.join(folder, sidecar_name(item.name))
        recorded = self._recorded(sftp, folder, listing, item)
        if recorded is not None:
            return recorded == item.sha256
        if _remote_sha256(sftp, final, item.size) != item.sha256:
            return False
        _write_small(sftp, sidecar, sidecar_text(item.sha256, item.name))
        return True

    def _upload(
        self,
        sftp: paramiko.SFTPClient,
        folder: str,
        listing: set[str],
        item: Item,
        progress: Progress,
    ) -> int:
        part = posixpath.join(folder, _part_name(item))
        final = posixpath.join(folder, item.name)
        offset = 0
        digest = hashlib.sha256()  # of the bytes the NAS holds: a resumed prefix, then those sent
        if _part_name(item) in listing:
            have = sftp.stat(part).st_size or 0
            prefix = hash_of(item.path, have) if 0 < have <= item.size else None
            if prefix is not None and _remote_sha256(sftp, part, have) == prefix.hexdigest():
                offset, digest = have, prefix
        sent = 0
        if offset < item.size or offset == 0:
            with (
                sftp.open(part, "r+b" if offset else "wb") as remote,
                open(item.path, "rb") as local,
            ):
                remote.set_pipelined(True)
                local.seek(offset)
                remote.seek(offset)
                progress(offset, force=True)
                done = offset
                while block := local.read(CHUNK):
                    remote.write(block)
                    digest.update(block)
                    done += len(block)
                    sent += len(block)
                    progress(done)
        if digest.hexdigest() != item.sha256:
            _remove_quietly(sftp, part)  # named after the hash planned: no use to a later run
        sent_as_planned(item, digest)
        size = sftp.stat(part).st_size
        if size != item.size:
            raise ArchiveUnavailable(
                f"NAS upload of {item.name} incomplete ({size} of {item.size} bytes); will retry"
            )
        sidecar = posixpath.join(folder, sidecar_name(item.name))
        if sidecar_name(item.name) in listing:
            _remove_quietly(sftp, sidecar)  # never leave an old hash beside new bytes
        _rename_over(sftp, part, final)
        _write_small(sftp, sidecar, sidecar_text(item.sha256, item.name))
        # Parts left by earlier versions of this file are garbage now.
        stale = re.compile(rf"^\.{re.escape(item.name)}\.[0-9a-f]{{16}}\.part$")
        for entry in listing:
            if stale.match(entry) and entry != _part_name(item):
                _remove_quietly(sftp, posixpath.join(folder, entry))
        return sent


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        attrs = sftp.stat(path)
    except FileNotFoundError:
        parent = posixpath.dirname(path)
        if parent and parent != path:
            _makedirs(sftp, parent)
        try:
            sftp.mkdir(path)
        except OSError:
            attrs = sftp.stat(path)  # created meanwhile by someone else, or re-raise
            if not stat_mod.S_ISDIR(attrs.st_mode or 0):
                raise PermanentError(f"NAS path {path} exists and is not a folder") from None
        return
    if not stat_mod.S_ISDIR(attrs.st_mode or 0):
        raise PermanentError(f"NAS path {path} exists and is not a folder")


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
        return True
    except FileNotFoundError:
        return False


def _remote_sha256(sftp: paramiko.SFTPClient, path: str, size: int) -> str:
    """Hash the first `size` bytes of a remote file by reading it back."""
    digest = hashlib.sha256()
    remaining = size
    with sftp.open(path, "rb") as handle:
        handle.prefetch(size, max_concurrent_requests=128)  # 4 MiB in flight
        while remaining > 0:
            block = handle.read(min(CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest.hexdigest()


def _write_small(sftp: paramiko.SFTPClient, path: str, text: str) -> None:
    with sftp.open(path, "wb") as handle:
        handle.write(text.encode("utf-8"))


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.remove(path)
    except FileNotFoundError:
        pass


def _rename_over(sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
    """Atomic replace with posix-rename@openssh.com; plain SFTP rename (remove first) otherwise."""
    try:
        sftp.posix_rename(src, dst)
        return
    except PermissionError:
        raise
    except OSError:
        transport = sftp.get_channel().get_transport()
        if not transport.is_active():
            raise
    # No posix-rename: SFTP v3 rename refuses an existing target. The final name is briefly
    # absent, never partial.
    _remove_quietly(sftp, dst)
    sftp.rename(src, dst)

"""Real SSH/SFTP servers on 127.0.0.1 for tests and drills (no mocks).

- `AsyncsshSftpServer`: an asyncssh server with the SFTP subsystem, running in a background
  thread; SFTP is chrooted to `root` (remote "/" is `root`). It can go down and come back on the
  same port (`stop()` / `start()`) and cut a connection after N more bytes are written
  (`cut_after(n)`), to play a flaky NAS.
- `OpenSshServer`: the system's OpenSSH `/usr/sbin/sshd` with `internal-sftp`, as the current
  user, no chroot (remote paths are the real paths under `root`). Skips the test when sshd is
  absent.

Both generate a fresh host key and client key, and write `known_hosts` in the
`[127.0.0.1]:port` form. Use them as context managers::

    with AsyncsshSftpServer(tmp_path) as nas:
        SftpArchive(nas.host, nas.port, nas.user, nas.client_key, nas.known_hosts, "/videos")
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import asyncssh

SSHD = Path("/usr/sbin/sshd")
LOCALHOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# keys and known_hosts


def host_label(host: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def public_key_line(key: asyncssh.SSHKey) -> str:
    """`"ssh-ed25519 AAAA..."` (type and base64 only, no comment)."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def new_key(path: Path | None = None) -> asyncssh.SSHKey:
    """A fresh ed25519 key; written (OpenSSH format, mode 600) to `path` when given."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    if path is not None:
        key.write_private_key(str(path))
        os.chmod(path, 0o600)
    return key


def write_known_hosts(path: Path, host: str, port: int, key_line: str) -> Path:
    """Write a one-entry known_hosts file: `[host]:port ssh-ed25519 AAAA...`."""
    path.write_text(f"{host_label(host, port)} {key_line}\n")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def wait_for_banner(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something on host:port answers with an SSH banner."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as err:
            last = err
        time.sleep(0.05)
    raise TimeoutError(f"no SSH server answered on {host}:{port} ({last})")


class _ServerBase:
    host = LOCALHOST

    def __init__(self, base: Path | None, user: str) -> None:
        self._own_base = base is None
        self.base = Path(tempfile.mkdtemp(prefix="igs-ssh-")) if base is None else Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.root = self.base / "nas"
        self.root.mkdir(exist_ok=True)
        self.client_key = self.base / "client_ed25519"
        self.known_hosts = self.base / "known_hosts"
        self.port = 0
        self._client = new_key(self.client_key)
        self._host_key = new_key()

    @property
    def host_key_line(self) -> str:
        return public_key_line(self._host_key)

    @property
    def label(self) -> str:
        return host_label(self.host, self.port)

    def _write_known_hosts(self) -> None:
        write_known_hosts(self.known_hosts, self.host, self.port, self.host_key_line)

    def write_wrong_known_hosts(self, path: Path) -> Path:
        """A known_hosts that names this host and port with some other key."""
        return write_known_hosts(path, self.host, self.port, public_key_line(new_key()))

    def _cleanup(self) -> None:
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def start(self):  # pragma: no cover - each server starts its own way
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# asyncssh


class _SshServer(asyncssh.SSHServer):
    def __init__(self, owner: AsyncsshSftpServer) -> None:
        self.owner = owner
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.owner._conns.add(conn)
        self.owner.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._conns.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self.owner.user and key.public_data == self.owner._client.public_data


class _SftpServer(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, owner: AsyncsshSftpServer) -> None:
        super().__init__(chan, chroot=os.fsencode(owner.root))
        self.owner = owner
        self.cut = False

    def write(self, file_obj: Any, offset: int, data: bytes) -> int:
        owner = self.owner
        if self.cut:  # requests already queued when the line went dead never land
            raise asyncssh.SFTPConnectionLost("connection cut by test")
        budget = owner._cut_budget
        if budget is not None and len(data) >= budget:
            owner._cut_budget = None
            owner.cuts += 1
            self.cut = True
            file_obj.seek(offset)
            file_obj.write(data[:budget])  # a partial write lands, as on a real cut
            file_obj.flush()
            owner.bytes_written += budget
            self.connection.abort()
            raise asyncssh.SFTPFailure("connection cut by test")
        if budget is not None:
            owner._cut_budget = budget - len(data)
        owner.bytes_written += len(data)
        return super().write(file_obj, offset, data)

    def read(self, file_obj: Any, offset: int, size: int) -> bytes:
        data = super().read(file_obj, offset, size)
        self.owner.bytes_read += len(data)
        return data

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        if not self.owner.posix_rename:
            raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
        return super().posix_rename(oldpath, newpath)


class AsyncsshSftpServer(_ServerBase):
    """asyncssh SSH server with chrooted SFTP on 127.0.0.1, in a background event loop.

    Attributes: host, port, user, client_key (private key file), known_hosts, root (local
    folder served as remote "/"), remote_root ("/"), connections (accepted so far),
    bytes_written (SFTP write payload), bytes_read (SFTP read payload served), cuts
    (connections cut so far).
    Set `posix_rename = False` to act like a server without posix-rename@openssh.com.
    """

    remote_root = "/"

    def __init__(self, base: Path | None = None, user: str = "igs") -> None:
        super().__init__(base, user)
        self.connections = 0
        self.bytes_written = 0
        self.bytes_read = 0
        self.cuts = 0
        self.posix_rename = True
        self._cut_budget: int | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="asyncssh-sftp", daemon=True
        )
        self._thread.start()

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> int:
        self._acceptor = await asyncssh.create_server(
            lambda: _SshServer(self),
            LOCALHOST,
            self.port,
            server_host_keys=[self._host_key],
            sftp_factory=lambda chan: _SftpServer(chan, self),
            allow_scp=False,
            reuse_address=True,
        )
        return self._acceptor.get_port()

    async def _stop(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    def start(self) -> AsyncsshSftpServer:
        """Listen (again) on the same port; the first call picks a free one."""
        if self._acceptor is None:
            self.port = self._call(self._start())
            self._write_known_hosts()
        return self

    def stop(self) -> None:
        """Drop every connection and stop listening (the NAS goes down)."""
        self._call(self._stop())

    def cut_after(self, nbytes: int | None) -> None:
        """Abort the connection once `nbytes` more bytes have been written (one shot)."""
        self._cut_budget = nbytes

    def local_path(self, remote: str) -> Path:
        return self.root / remote.lstrip("/")

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
            self._cleanup()


# ---------------------------------------------------------------------------------------------
# OpenSSH


class OpenSshServer(_ServerBase):
    """The system OpenSSH sshd on 127.0.0.1 with `internal-sftp`, logging in as the current user.

    No chroot: `remote_root` is `str(root)`. `stop()` / `start()` restart on the same port.
    """

    def __init__(self, base: Path | None = None) -> None:
        if not SSHD.is_file():
            import pytest

            pytest.skip(f"{SSHD} not installed (apt-get install openssh-server)")
        super().__init__(base, pwd.getpwuid(os.getuid()).pw_name)
        self.remote_root = str(self.root.resolve())
        self.config = self.base / "sshd_config"
        self.log = self.base / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        host_key = self.base / "ssh_host_ed25519_key"
        self._host_key.write_private_key(str(host_key))
        os.chmod(host_key, 0o600)
        authorized = self.base / "authorized_keys"
        authorized.write_text(public_key_line(self._client) + "\n")
        os.chmod(authorized, 0o600)
        self._host_key_file = host_key
        self._authorized = authorized

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {LOCALHOST}",
                    f"HostKey {self._host_key_file}",
                    f"PidFile {self.base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self._authorized}",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AuthenticationMethods publickey",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {self.user}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel INFO",
                    "",
                ]
            )
        )

    def start(self) -> OpenSshServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        fixed = self.port != 0
        for _attempt in range(5):
            if not fixed:
                self.port = free_port()
            self._write_config()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(  # noqa: S603 - fixed argument list
                    [str(SSHD), "-D", "-e", "-f", str(self.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            try:
                self._wait_ready()
            except (TimeoutError, RuntimeError):
                self._kill()
                if fixed:
                    raise
                continue
            self._write_known_hosts()
            return self
        raise RuntimeError(f"sshd did not start; log: {self.log_tail()}")

    def _wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_tail()}")
            try:
                wait_for_banner(self.host, self.port, timeout=0.5)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"sshd not answering on {self.label}: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        """Stop sshd (listener gone; sessions already open end with their own processes)."""
        self._kill()

    def local_path(self, remote: str) -> Path:
        return Path(remote)

    def close(self) -> None:
        self._kill()
        self._cleanup()


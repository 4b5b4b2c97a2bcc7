"""A throwaway PostgreSQL server for tests: its own data folder, 127.0.0.1 and a free port.

Uses the system's PostgreSQL binaries (Debian/Ubuntu `postgresql` package:
/usr/lib/postgresql/<version>/bin, or `pg_ctl` on PATH). PostgreSQL refuses to run as root, so
as root the server runs as the `postgres` user (`runuser -u postgres --`) on a data folder that
user owns. Password authentication (scram-sha-256) over TCP; the unix socket lives in the
server's own folder. The system's cluster is never touched.

    with PostgresServer() as pg:
        env = {**pg.igs_env()}  # IGS_POSTGRES__HOST/PORT/USER/PASSWORD/DB
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or no way to run them here (the reason says which)."""


def find_bindir() -> Path:
    explicit = os.environ.get("PG_BINDIR")  # a chosen version's bin folder
    if explicit:
        if not (Path(explicit) / "initdb").is_file():
            raise PostgresUnavailable(f"PG_BINDIR={explicit} has no initdb")
        return Path(explicit)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL server binaries not installed (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, user: str = "dagster", db: str = "dagster") -> None:
        self.bindir = find_bindir()
        self.user, self.db = user, db
        self.password = secrets.token_hex(12)
        self.host = "127.0.0.1"
        self.port = 0
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user") from None
            if not shutil.which("runuser"):
                raise PostgresUnavailable("running as root and runuser is missing")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.base = Path(tempfile.mkdtemp(prefix="igs-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._started = False

    # -- helpers --------------------------------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*self._as, *argv], capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.base, env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                f"\n{self.log_tail()}"
            )
        return proc

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def igs_env(self) -> dict[str, str]:
        """The IGS_POSTGRES__* settings that point the deployment at this server."""
        return {
            "IGS_POSTGRES__HOST": self.host,
            "IGS_POSTGRES__PORT": str(self.port),
            "IGS_POSTGRES__USER": self.user,
            "IGS_POSTGRES__PASSWORD": self.password,
            "IGS_POSTGRES__DB": self.db,
        }

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.db
        )

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        if self._started:
            return self
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as:
            pg = pwd.getpwnam("postgres")
            for path in (self.base, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        os.chmod(self.base, 0o700)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        )
        pwfile.unlink()
        for _attempt in range(5):
            self.port = _free_port()
            options = (
                f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.base} "
                "-c fsync=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                    "-o", options, "-w", "-t", "60", "start",
                )
            except RuntimeError:
                if "could not bind" in self.log_tail() or "in use" in self.log_tail():
                    continue
                raise
            break
        self._started = True
        return self

    def _create_database(self) -> None:
        if self.db == "postgres":
            return
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.db}"')
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self._started:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            self._started = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
            self._create_database()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

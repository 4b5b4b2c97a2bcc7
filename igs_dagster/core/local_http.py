"""A quiet HTTP server on a loopback address, served by a thread (`LoopbackServer`: the base of
the tests' scripted servers), and one over a folder on 127.0.0.1 (`FolderServer`: the demo's
sample, the tests, drills, bench).

yt-dlp often hangs up before a file is fully sent (it probes, then re-requests a range); a client
that hangs up is normal here, so those errors are dropped instead of printed as tracebacks.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        if not isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset...
            super().handle_error(request, client_address)


class _QuietServerV6(_QuietServer):
    address_family = socket.AF_INET6


class LoopbackServer:
    """`handler` serving on a free port of a loopback address (`host`, IPv4 or IPv6) from a
    thread, until `close()` (or the end of a `with` block)."""

    def __init__(self, handler: Callable[..., http.server.BaseHTTPRequestHandler],
                 host: str = "127.0.0.1") -> None:
        self._server = (_QuietServerV6 if ":" in host else _QuietServer)((host, 0), handler)
        self.host, self.port = host, self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderServer(LoopbackServer):
    """Serves `root` on a free loopback port until `close()` (or the end of a `with` block)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        super().__init__(functools.partial(_QuietHandler, directory=str(self.root)))

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def add(self, src: Path, name: str | None = None) -> str:
        """Serve a copy of `src` (a copy, not a hard link: a second link to a media file makes
        the local-media fence refuse it, core/pathguard)."""
        dest = self.root / (name or Path(src).name)
        if not dest.exists():
            shutil.copyfile(src, dest)
        return self.url(dest.relative_to(self.root).as_posix())

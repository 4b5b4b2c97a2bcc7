"""A quiet HTTP server over a folder on 127.0.0.1 (the demo's sample, the tests, drills, bench).

yt-dlp often hangs up before a file is fully sent (it probes, then re-requests a range); a client
that hangs up is normal here, so those errors are dropped instead of printed as tracebacks.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        if not isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset...
            super().handle_error(request, client_address)


class FolderServer:
    """Serves `root` on a free loopback port until `close()` (or the end of a `with` block)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def add(self, src: Path, name: str | None = None) -> str:
        """Serve a copy of `src` (a copy, not a hard link: a second link to a media file makes
        the local-media fence refuse it, core/pathguard)."""
        dest = self.root / (name or Path(src).name)
        if not dest.exists():
            shutil.copyfile(src, dest)
        return self.url(dest.relative_to(self.root).as_posix())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FolderServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

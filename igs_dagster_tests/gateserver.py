"""A loopback media server whose answers a test scripts, for yt-dlp's refusals: a status to send
the first N times a path is asked for (429 twice, then the file), a cookie every request must
carry (403 without it), and a log of each request (path, status, time, whether a cookie came).
Files are served by the standard library's handler (ranges, content types) from a folder."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from igs_dagster.core.local_http import LoopbackServer


@dataclass
class Hit:
    path: str
    status: int
    at: float
    cookie: str


class GateServer(LoopbackServer):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cookie: tuple[str, str] | None = None  # (name, value) every request must carry
        self.scripted: dict[str, list[int]] = {}  # path -> statuses to answer first
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send_response(self, code: int, message: str | None = None) -> None:
                with outer._lock:
                    outer.hits.append(Hit(self.path.split("?", 1)[0], code, time.time(),
                                          self.headers.get("Cookie") or ""))
                super().send_response(code, message)

            def _refuse(self) -> bool:
                path = self.path.split("?", 1)[0]
                with outer._lock:
                    queue = outer.scripted.get(path) or []
                    status = queue.pop(0) if queue else None
                    cookie = outer.cookie
                if status is None and cookie is not None:
                    sent = self.headers.get("Cookie") or ""
                    if f"{cookie[0]}={cookie[1]}" not in [c.strip() for c in sent.split(";")]:
                        status = 403
                if status is None:
                    return False
                body = f"status {status}\n".encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self._refuse():
                    super().do_GET()

            def do_HEAD(self) -> None:  # noqa: N802
                if not self._refuse():
                    super().do_HEAD()

        super().__init__(functools.partial(Handler, directory=str(self.root)))

    def add(self, src: Path, name: str) -> str:
        shutil.copyfile(src, self.root / name)
        return f"{self.base_url}/{name}"

    def write(self, name: str, text: str) -> str:
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_text(text, encoding="utf-8")
        return f"{self.base_url}/{name}"

    def script(self, name: str, *statuses: int) -> None:
        with self._lock:
            self.scripted[f"/{name}"] = list(statuses)

    def requests(self, name: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == f"/{name}"]

"""Feeds served on 127.0.0.1 for tests and the benchmark: RSS podcasts with enclosures, Atom,
YouTube-style channel feeds, and a server whose answers (body, 304 via ETag/Last-Modified, 500,
garbage) can be changed between polls. It records every request."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass
from email.utils import formatdate
from xml.sax.saxutils import escape

from igs_dagster.core.local_http import LoopbackServer


@dataclass
class Episode:
    guid: str
    title: str
    media_url: str
    published: str = "Mon, 02 Nov 2026 10:00:00 GMT"
    description: str = "An episode."
    duration: str = "0:11"
    media_type: str = "audio/mpeg"


def rss(show: str, episodes: list[Episode], description: str = "A show.") -> str:
    items = "".join(
        f"<item><title>{escape(e.title)}</title><guid isPermaLink=\"false\">{escape(e.guid)}</guid>"
        f"<pubDate>{e.published}</pubDate><description>{escape(e.description)}</description>"
        f"<itunes:duration>{e.duration}</itunes:duration>"
        f"<enclosure url=\"{escape(e.media_url)}\" length=\"1\" type=\"{e.media_type}\"/></item>"
        for e in episodes
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
        f"<title>{escape(show)}</title><link>http://127.0.0.1/</link>"
        f"<description>{escape(description)}</description>{items}</channel></rss>"
    )


def atom(title: str, episodes: list[Episode]) -> str:
    entries = "".join(
        f"<entry><id>{escape(e.guid)}</id><title>{escape(e.title)}</title>"
        f"<updated>{e.published}</updated><published>{e.published}</published>"
        f"<summary>{escape(e.description)}</summary>"
        f"<link rel=\"enclosure\" type=\"{e.media_type}\" href=\"{escape(e.media_url)}\"/></entry>"
        for e in episodes
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:test:{escape(title)}</id>"
        f"<updated>2026-11-02T10:00:00Z</updated>{entries}</feed>"
    )


def youtube_channel(name: str, channel_id: str, videos: list[tuple[str, str, str]]) -> str:
    """videos: (video id, title, ISO date) newest first, as www.youtube.com/feeds/videos.xml."""
    entries = "".join(
        f"<entry><id>yt:video:{v}</id><yt:videoId>{v}</yt:videoId>"
        f"<yt:channelId>{channel_id}</yt:channelId><title>{escape(t)}</title>"
        f"<link rel=\"alternate\" href=\"https://www.youtube.com/watch?v={v}\"/>"
        f"<author><name>{escape(name)}</name></author><published>{d}</published>"
        f"<updated>{d}</updated><media:group><media:title>{escape(t)}</media:title>"
        f"<media:description>About {escape(t)}</media:description></media:group></entry>"
        for v, t, d in videos
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
        'xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">'
        f"<id>yt:channel:{channel_id}</id><yt:channelId>{channel_id}</yt:channelId>"
        f"<title>{escape(name)}</title><author><name>{escape(name)}</name></author>{entries}</feed>"
    )


class FeedServer(LoopbackServer):
    """`set(path, body)` serves `body` (with ETag and Last-Modified; a matching conditional
    request gets 304); `fail(path, status)` answers `status`; `requests` lists (path, status)."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[int, bytes, str]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                with outer._lock:
                    doc = outer.docs.get(path)
                    media = outer.files.get(path)
                if media is not None:
                    return self._send(200, media, "audio/mpeg", {})
                if doc is None:
                    return self._send(404, b"not found", "text/plain", {})
                status, body, ctype = doc
                if status != 200:
                    return self._send(status, body, ctype, {})
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                modified = outer.modified.get(path, formatdate(usegmt=True))
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-None-Match") is None
                    and self.headers.get("If-Modified-Since") == modified
                ):
                    return self._send(304, b"", ctype, {"ETag": etag})
                return self._send(200, body, ctype, {"ETag": etag, "Last-Modified": modified})

            def _send(self, status: int, body: bytes, ctype: str, headers: dict) -> None:
                with outer._lock:
                    outer.requests.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)) if status != 304 else "0")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self.modified: dict[str, str] = {}
        super().__init__(Handler)  # quiet: a client hanging up is normal

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, body: str | bytes, ctype: str = "application/rss+xml") -> str:
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self.docs[path] = (200, data, ctype)
            self.modified[path] = formatdate(usegmt=True)
        return self.url(path)

    def fail(self, path: str, status: int = 500) -> None:
        with self._lock:
            self.docs[path] = (status, b"server error", "text/plain")

    def add_file(self, path: str, data: bytes) -> str:
        with self._lock:
            self.files[path] = data
        return self.url(path)

    def hits(self, path: str) -> list[int]:
        with self._lock:
            return [s for p, s in self.requests if p.split("?", 1)[0] == path]

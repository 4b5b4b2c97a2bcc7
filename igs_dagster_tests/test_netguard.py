"""Issue 23, finding 3: the download worker and the feed reader fetch from public addresses only.

The worker fetched `http://127.0.0.1:3111/`, `[::1]`, `localhost:3000/graphql` (Dagster's
webserver), `0x7f000001` and `2130706433`. Now (core/netguard) intake refuses a blocked address
in any notation before any request, and the worker's guarded resolver refuses every host that
resolves to loopback, private, link-local, multicast or unspecified addresses (IPv4, IPv6,
mapped, integer forms; names too), on every redirect hop, with `IGS_NETWORK__ALLOW` for named
hosts and networks. Every server here records the requests it got: a refused fetch must not
have reached it at all."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.core.inbox import EventQueue, Source
from igs_dagster.core.local_http import LoopbackServer
from igs_dagster.core.settings import load_settings
from igs_dagster.intake import accept
from igs_dagster_tests.media import SAMPLE_MP4

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Show</title><item>
<title>Ep</title><guid>ep1</guid><enclosure url="{url}" type="audio/mpeg"/></item></channel></rss>"""


class Recorder(LoopbackServer):
    """A loopback HTTP server that records every request: `/jfk.mp4` (the sample),
    `/go?to=URL` (302 to URL), `/feed.xml` (a feed whose enclosure is `/jfk.mp4`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                if self.path.startswith("/go?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/feed.xml":
                    body = FEED.format(url=recorder.url("/jfk.mp4")).encode()
                    kind = "application/rss+xml"
                else:
                    body, kind = SAMPLE_MP4.read_bytes(), "video/mp4"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

        super().__init__(Handler, host)

    def url(self, path: str, host: str | None = None) -> str:
        host = host or self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{path}"


@pytest.fixture
def recorder():
    with Recorder() as server:
        yield server


@pytest.fixture
def settings_with(tmp_path: Path, monkeypatch):
    def make(allow: list[str]):
        monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
        monkeypatch.setenv("IGS_NETWORK__ALLOW", json.dumps(allow))
        return load_settings()
    return make


# ---- addresses ---------------------------------------------------------------------------------

BLOCKED = ["127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1",
           "192.168.1.1", "169.254.169.254", "fe80::1", "fc00::1", "224.0.0.1", "ff02::1",
           "100.64.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1",
           "255.255.255.255", "198.18.0.1", "fe80::1%lo"]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "1.1.1.1"]


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_addresses(address: str) -> None:
    from igs_dagster.core import netguard

    assert netguard.refusal(address), address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    from igs_dagster.core import netguard

    assert netguard.refusal(address) is None


def test_allow_list_names_hosts_and_networks() -> None:
    from igs_dagster.core import netguard

    policy = netguard.Policy.parse(["nas.local", "192.168.1.0/24", "127.0.0.1", "[::1]"])
    assert policy.why_refused("nas.local", "10.9.9.9") is None  # a named host: any address
    assert policy.why_refused("x", "192.168.1.77") is None
    assert policy.why_refused("x", "::ffff:192.168.1.77") is None
    assert policy.why_refused("x", "::1") is None and policy.why_refused("x", "127.0.0.1") is None
    assert policy.why_refused("x", "127.0.0.2") == "loopback"
    assert policy.why_refused("x", "192.168.2.1") == "private"
    with pytest.raises(ValueError):
        netguard.Policy.parse(["http://x/"])


# ---- intake: refused before any request ------------------------------------------------------

ISSUE_URLS = [  # the issue's, and their relatives
    "http://127.0.0.1:3111/", "http://[::1]:3000/x.mp4", "http://localhost:3000/graphql",
    "http://0x7f000001/x.mp4", "http://2130706433/x.mp4", "http://127.1/x.mp4",
    "http://0177.0.0.1/x.mp4", "http://[::ffff:127.0.0.1]/x.mp4", "http://[::ffff:7f00:1]/x.mp4",
    "http://10.0.0.1/x.mp4", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x",
    "http://224.0.0.1/x.mp4", "http://0.0.0.0:3000/x", "http://api.localhost/x.mp4",
    "https://LOCALHOST./x.mp4",
]


def test_intake_refuses_blocked_addresses_in_every_notation(settings_with) -> None:
    settings = settings_with([])
    for url in ISSUE_URLS:
        event = VideoDownload(name="video.download", data=VideoDownloadData(url=url))
        with pytest.raises(PermanentError, match="refused URL host|invalid source") as err:
            accept(event, settings)
        assert "\n" not in str(err.value)
    assert not settings.queue_db.exists() or EventQueue(settings.queue_db).known_keys(["x"]) == set()
    assert len(ISSUE_URLS) == 16


# ---- the worker: refused when it connects, on every hop --------------------------------------

def _download(settings, url: str) -> tuple[bool, str]:
    """video_download for a source registered without intake (an old inbox, a UI partition)."""
    from igs_dagster.definitions import defs
    from igs_dagster.defs.video.assets import video_download
    from igs_dagster.video.ids import parse_source

    key = parse_source(url).key
    EventQueue(settings.queue_db).register_source(Source(key, "url", url, "web", "T"), replace=True)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        result = dg.materialize([video_download], instance=instance, partition_key=key,
                                resources=defs.resources, raise_on_error=False)
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    return result.success, (failure.step_failure_data.error.message if failure else "")


@pytest.mark.slow
def test_worker_refuses_loopback_in_every_form_and_fetches_nothing(settings_with, recorder) -> None:
    settings = settings_with([])
    v6 = Recorder("::1")
    try:
        urls = [recorder.url("/jfk.mp4"), recorder.url("/jfk.mp4", "localhost"),
                recorder.url("/jfk.mp4", "0x7f000001"), recorder.url("/jfk.mp4", "2130706433"),
                recorder.url("/jfk.mp4", "127.1"), v6.url("/jfk.mp4"),
                v6.url("/jfk.mp4", "::ffff:127.0.0.1").replace(f":{v6.port}", f":{recorder.port}")]
        for url in urls:
            ok, message = _download(settings, url)
            assert not ok and "not a public address" in message, (url, message)
            assert "\n" not in message.strip()
        assert recorder.requests == [] and v6.requests == []
        assert not list(settings.media_dir.rglob("video.*"))  # nothing half-written either
    finally:
        v6.close()


@pytest.mark.slow
def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(settings_with, recorder) -> None:
    allowed = Recorder("127.0.0.2")  # the "public" host of this test: allowed by name/network
    try:
        settings = settings_with(["127.0.0.2"])
        for target in (recorder.url("/jfk.mp4"), recorder.url("/jfk.mp4", "localhost"),
                       recorder.url("/jfk.mp4", "2130706433")):
            ok, message = _download(settings, allowed.url(f"/go?to={target}"))
            assert not ok and "not a public address" in message, message
        assert len(allowed.requests) == 3 and recorder.requests == []
        # the control: the allowed host itself serves the sample
        ok, message = _download(settings, allowed.url("/jfk.mp4"))
        assert ok, message
        # feeds follow redirects through the same fence
        from igs_dagster.video import feeds

        with pytest.raises(PermanentError, match="not a public address"):
            feeds.read_feed(allowed.url(f"/go?to={recorder.url('/feed.xml')}"))
        assert recorder.requests == []
    finally:
        allowed.close()


@pytest.mark.slow
def test_named_hosts_and_networks_can_be_allowed(settings_with, recorder) -> None:
    ok, message = _download(settings_with(["localhost"]), recorder.url("/jfk.mp4", "localhost"))
    assert ok, message
    ok, message = _download(settings_with(["127.0.0.0/8"]), recorder.url("/jfk.mp4"))
    assert ok, message
    assert len([r for r in recorder.requests if r.startswith("GET /jfk.mp4")]) >= 2


def test_feeds_and_playlists_are_fenced_too(settings_with, recorder) -> None:
    from igs_dagster.video import feeds
    from igs_dagster.video.intake import read_playlist

    settings_with([])
    with pytest.raises(PermanentError, match="not a public address"):
        feeds.read_feed(recorder.url("/feed.xml", "localhost"))
    with pytest.raises(PermanentError, match="refused URL host"):
        read_playlist(recorder.url("/feed.xml"))
    assert recorder.requests == []
    settings_with(["127.0.0.1"])
    assert feeds.read_feed(recorder.url("/feed.xml")).entries  # allowed: read as before


def test_ytdlp_only_fetches_with_its_own_downloaders() -> None:
    from igs_dagster.core import netguard

    options = netguard.ytdlp_options({"format": "b"})
    check = options["match_filter"]
    assert check({"protocol": "https+https"}) is None and check({"protocol": "m3u8_native"}) is None
    assert check({"protocol": "rtmp"}, incomplete=True) is None  # decided on the chosen format
    for info in ({"protocol": "rtmp"}, {"protocol": "rtmp_ffmpeg"}, {"protocol": "https+ftp"},
                 {"protocol": "m3u8_native", "is_live": True}):
        with pytest.raises(PermanentError, match="download refused"):
            check(info)
    assert options["proxy"] == "" and options["format"] == "b"
    assert "-protocol_whitelist" in options["external_downloader_args"]["ffmpeg_i"]
    # a filter already there (one that skips a live stream to wait for it) runs first
    waits = netguard.ytdlp_options({"match_filter": lambda info, *, incomplete=False: "live"})
    assert waits["match_filter"]({"protocol": "rtmp", "is_live": True}) == "live"

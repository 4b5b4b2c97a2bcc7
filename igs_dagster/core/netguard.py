"""Fetches of URLs someone else chose reach public addresses only (no SSRF).

A URL sent over the API, a feed entry or a page's redirect could point the worker at this
machine or its network: `http://127.0.0.1:3000/graphql` (Dagster's webserver), `[::1]`,
`0x7f000001`, `2130706433`, a router, a NAS. Inside `fence(policy)` every host name is
resolved through one guarded `getaddrinfo`: addresses that are loopback, private, link-local,
shared (CGNAT), multicast, reserved or unspecified (IPv4, IPv6, IPv4-mapped, 6to4 and Teredo
forms alike) are dropped, and a name with nothing left is refused with `AddressRefused`. The
client then connects to an address that was checked, never to a second DNS answer (no DNS
rebinding), and it does so for every request and every redirect hop, because yt-dlp (its
requests, urllib and websockets handlers), urllib3 and http.client all resolve through
`socket.getaddrinfo`. `IGS_NETWORK__ALLOW` names hosts (any address they resolve to) and
networks (`192.168.1.0/24`, `127.0.0.1`) that are allowed anyway: a NAS, the tests' loopback.

yt-dlp gets options that keep every fetch in this process (`ytdlp_options`): no proxy from the
environment (the guard must see the address it connects to), its own downloaders rather than
ffmpeg or rtmpdump (which connect by themselves: ffmpeg may only read local files), and no
live streams. Notifications (Apprise) and the SFTP archive go to services the owner
configured and are not fenced.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from igs_dagster.core.errors import PermanentError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class AddressRefused(OSError):
    """A connection the fence refused (an OSError, so every HTTP client treats it as a failed
    connection: no retry can change it)."""


def refusal(address: str | Address) -> str | None:
    """Why `address` may not be fetched from (`loopback`, `private`, ...), or None."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 address
            return refusal(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and refusal(embedded):
            return refusal(embedded)
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if not ip.is_global:
        return "not global"
    return None


def _host_name(host: Any) -> str:
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    return str(host or "").strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Policy:
    """What may be reached besides public addresses: host names (whatever they resolve to)
    and networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, allow: Sequence[str]) -> Policy:
        """`["nas.local", "192.168.1.0/24", "127.0.0.1", "::1"]` -> Policy; ValueError names a
        bad entry."""
        names, networks = set(), []
        for raw in allow:
            entry = str(raw).strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                name = _host_name(entry)
                if not name or any(ch in name for ch in "/:@ "):
                    raise ValueError(f"{raw!r} is neither a host name nor an address or network") from None
                names.add(name)
        return cls(frozenset(names), tuple(networks))

    def allows_address(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)

    def why_refused(self, host: str, address: str) -> str | None:
        """None when `address` (which `host` resolved to) may be connected to, else why not."""
        if _host_name(host) in self.names or self.allows_address(address):
            return None
        return refusal(address)


def policy_from_settings(settings: Any = None) -> Policy:
    """The policy `IGS_NETWORK__ALLOW` describes (settings loaded when not given)."""
    if settings is None:
        from igs_dagster.core.settings import load_settings

        settings = load_settings()
    return Policy.parse(settings.network.allow)


# --------------------------------------------------------------------------- the guard

_active: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("igs_netguard", default=None)
_real_getaddrinfo = socket.getaddrinfo
_install_lock = threading.Lock()


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
    results = _real_getaddrinfo(host, port, *args, **kwargs)
    policy = _active.get()
    if policy is None:
        return results
    kept, why = [], None
    for result in results:
        address = result[4][0]
        reason = policy.why_refused(_host_name(host), address)
        if reason is None:
            kept.append(result)
        elif why is None:
            why = f"{address} is {reason}"
    if not kept:
        shown = _host_name(host)
        where = shown if why is None or why.startswith(shown + " ") else f"{shown} ({why})"
        raise AddressRefused(f"refused to connect to {where}: not a public address "
                             f"{_allow_hint(shown)}")
    return kept


def _allow_hint(name: str) -> str:
    """How to allow `name`, as the user would type it (the daemon's runs read it too)."""
    return f"(to allow it: IGS_NETWORK__ALLOW={name}, or network.allow in the config file)"


def install() -> None:
    """Put the guarded resolver in place (once per process; idle outside `fence`)."""
    with _install_lock:
        if socket.getaddrinfo is not _guarded_getaddrinfo:
            socket.getaddrinfo = _guarded_getaddrinfo


def refused_in(err: BaseException | None) -> AddressRefused | None:
    """The AddressRefused somewhere under `err` (causes, contexts, yt-dlp's exc_info/cause)."""
    from igs_dagster.core.errors import error_chain

    return next((e for e in error_chain(err) if isinstance(e, AddressRefused)), None)


@contextlib.contextmanager
def fence(policy: Policy | None = None) -> Iterator[Policy]:
    """Within the block (this thread/context), connections reach allowed addresses only; a
    failure caused by a refused address comes out as one PermanentError line. Without a
    `policy`, a fence already active here keeps its own; else the settings' applies."""
    if policy is None:
        policy = _active.get() or policy_from_settings()
    install()
    token = _active.set(policy)
    try:
        yield policy
    except PermanentError:
        raise
    except Exception as err:
        refused = refused_in(err)
        if refused is not None:
            raise PermanentError(str(refused)) from None
        raise
    finally:
        _active.reset(token)


def check_url_host(host: str, policy: Policy) -> None:
    """Refuse at intake, before any request, a URL host that is a blocked address in any
    notation (`127.1`, `0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`) or `localhost`. Names
    are resolved later, by the guard, when the worker connects."""
    name = _host_name(host)
    if name in policy.names:
        return
    if name == "localhost" or name.endswith(".localhost"):
        raise PermanentError(f"refused URL host {name}: loopback {_allow_hint(name)}")
    try:
        address = str(ipaddress.ip_address(name))
    except ValueError:
        try:  # the forms getaddrinfo also takes: 127.1, 0x7f000001, 2130706433, 0177.0.0.1
            address = socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return  # a host name: the guard decides when the worker connects
    reason = policy.why_refused(name, address)
    if reason is not None:
        raise PermanentError(f"refused URL host {name}: {address} is {reason} "
                             f"{_allow_hint(name)}")


# --------------------------------------------------------------------------- yt-dlp

# Protocols yt-dlp's own downloaders fetch in this process, through the guard.
NATIVE_PROTOCOLS = frozenset({"http", "https", "m3u8", "m3u8_native", "http_dash_segments",
                              "http_dash_segments_generator"})


def _native_only(info: dict, *, incomplete: bool = False) -> str | None:
    if incomplete:
        return None
    protocols = str(info.get("protocol") or "https").split("+")
    other = [p for p in protocols if p not in NATIVE_PROTOCOLS]
    if other or info.get("is_live"):
        what = "a live stream" if info.get("is_live") else f"protocol {'+'.join(other)}"
        raise PermanentError(f"download refused: {what} would be fetched outside the "
                             "address fence (ffmpeg or rtmpdump); only http(s), HLS and DASH")
    return None


_FENCED_OPTIONS: dict[str, Any] = {
    "proxy": "",  # no proxy from the environment: the guard sees the address it connects to
    "external_downloader": {"default": "native"},
    "hls_prefer_native": True,
    # should yt-dlp still hand a stream to ffmpeg (an HLS feature its own downloader lacks),
    # ffmpeg may read local files only: it connects by itself, past the guard
    "external_downloader_args": {"ffmpeg_i": ["-protocol_whitelist", "file,crypto,data"]},
    "concurrent_fragment_downloads": 1,  # fragments in this thread, where the fence holds
}


def ytdlp_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` for a yt-dlp call inside `fence`: every fetch stays in this process and this
    thread. A `match_filter` already there runs first (it may skip a live stream to wait for
    it); then formats that would be fetched by ffmpeg or rtmpdump are refused."""
    previous = options.get("match_filter")

    def match_filter(info: dict, *, incomplete: bool = False) -> str | None:
        skip = previous(info, incomplete=incomplete) if previous is not None else None
        return skip or _native_only(info, incomplete=incomplete)

    return {**options, **_FENCED_OPTIONS, "match_filter": match_filter}

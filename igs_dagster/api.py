"""HTTP event API: `POST /events` takes what `igs send` sends, for curl and other machines.

Starlette and uvicorn come with dagster-webserver, so no extra web framework. Binds to
127.0.0.1 unless told otherwise; every request to /events needs
`Authorization: Bearer <IGS_API__TOKEN>`, compared in constant time, and the API refuses to
start without a token. A malformed event gets a 4xx with the reason and nothing is queued:

    401 missing or wrong token        413 body larger than IGS_API__MAX_BODY_BYTES
    400 body is not a JSON object     422 unknown event name or invalid data
    202 queued {event_id, name, key, message, known}   200 system.log written at once

`GET /health` (no token) answers `{"ok": true}` for container health checks.

It stays up under abuse: a client must send its whole request (headers and body) within
REQUEST_TIMEOUT_S of connecting (or of its previous response) or it is dropped; idle
keep-alive connections close after KEEP_ALIVE_S; at most MAX_CONNECTIONS are served at once
(503 beyond) and at most MAX_INTAKE_THREADS events are checked at the same time; the open-file
limit is raised to its hard limit at start. `loop.start` is refused unless
IGS_LOOP__API_ENABLED is set: with it, the token can run code (the PRD's checks).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import socket

import anyio
import h11
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from igs_dagster.core.errors import PermanentError, SettingsError
from igs_dagster.core.events import EVENT_NAMES, parse_event
from igs_dagster.core.redact import redact
from igs_dagster.core.settings import Settings
from igs_dagster.intake import accept

MIN_TOKEN_CHARS = 16
REQUEST_TIMEOUT_S = 10.0  # whole request (headers + body) from a slow or idle client
KEEP_ALIVE_S = 5
MAX_CONNECTIONS = 1024
MAX_INTAKE_THREADS = 8
MAX_HEADER_BYTES = 16 * 1024
log = logging.getLogger("igs.api")


def _error(status: int, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": redact(reason)}, status_code=status, headers=headers or None)


def check_token(settings: Settings) -> bytes:
    """The configured token as bytes; SettingsError (one line) if it is missing or too short."""
    token = settings.api.token.get_secret_value().strip() if settings.api.token else ""
    if not token:
        raise SettingsError("IGS_API__TOKEN must be set to start the event API "
                            "(e.g. `openssl rand -hex 32`)")
    if len(token) < MIN_TOKEN_CHARS:
        raise SettingsError(f"IGS_API__TOKEN is too short: use at least {MIN_TOKEN_CHARS} random characters")
    return token.encode()


def create_app(settings: Settings) -> Starlette:
    import hashlib
    import hmac

    expected = check_token(settings)
    limit = settings.api.max_body_bytes

    expected_digest = hashlib.sha256(expected).digest()
    intake_limiter = anyio.CapacityLimiter(MAX_INTAKE_THREADS)

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compare fixed-length digests in constant time: neither the content nor the length of
        # the token leaks through response timing
        given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
        ok = hmac.compare_digest(given_digest, expected_digest)
        return ok and scheme.lower() == "bearer"

    async def read_limited(request: Request) -> bytes | None:
        """The body, or None as soon as it is known to exceed `limit` (declared or streamed)."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            return None
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                return None
        return bytes(body)

    async def post_event(request: Request) -> JSONResponse:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        try:
            body = await read_limited(request)
        except ClientDisconnect:
            return _error(400, "client disconnected before the body was complete")
        if body is None:
            return _error(413, f"body larger than {limit} bytes")
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            return _error(400, f"body is not valid JSON: {str(err)[:200]}")
        if not isinstance(raw, dict):
            return _error(400, 'body must be a JSON object {"name": ..., "data": {...}}')
        try:
            event = parse_event(raw)
            accepted = await anyio.to_thread.run_sync(
                functools.partial(accept, event, settings, origin="api"), limiter=intake_limiter
            )
        except PermanentError as err:
            return _error(422, str(err))
        except Exception:  # noqa: BLE001 - a 500 with no internals; the log has the traceback
            log.exception("event %r failed", raw.get("name") if raw.get("name") in EVENT_NAMES else "?")
            return _error(500, "internal error: the event was not accepted (see the API log)")
        body = {k: redact(v) if isinstance(v, str) else v for k, v in accepted.to_json().items()}
        return JSONResponse(body, status_code=200 if accepted.event_id is None else 202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/events", post_event, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 = any free port); SettingsError with one line if it fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except (OSError, OverflowError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise SettingsError(f"cannot listen on {host}:{port}: {reason}") from None


def _guarded_h11():
    """uvicorn's h11 protocol with a request deadline: uvicorn itself only times out idle
    keep-alive connections after a response, never a client that connects and sends nothing,
    or sends its headers or body a byte at a time."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        request_timeout_s = REQUEST_TIMEOUT_S

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._deadline: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            self._watch()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _cancel(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _watch(self) -> None:
            """Armed while the client still owes us request bytes, cancelled once it is done."""
            receiving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
            if receiving and not self.transport.is_closing():
                if self._deadline is None:
                    self._deadline = self.loop.call_later(self.request_timeout_s, self._drop)
            else:
                self._cancel()

        def _drop(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.warning("dropped a client that sent no complete request in %gs",
                            self.request_timeout_s)
                self.transport.close()

    return GuardedH11Protocol


def raise_file_limit(wanted: int = 65536) -> int:
    """Raise this process's soft open-file limit towards its hard limit; return the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the API until SIGINT/SIGTERM. Prints `listening on http://HOST:PORT` once bound."""
    import uvicorn

    app = create_app(settings)  # no token, no server: checked before binding
    host = host or settings.api.host
    sock = bind(host, settings.api.port if port is None else port)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"igs api: listening on http://{shown}:{actual_port} (POST /events, GET /health)", flush=True)
    raise_file_limit()
    config = uvicorn.Config(
        app, log_level="info", server_header=False, date_header=False,
        http=_guarded_h11(), limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES, backlog=1024,
    )
    uvicorn.Server(config).run(sockets=[sock])

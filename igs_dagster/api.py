"""HTTP event API: `POST /events` takes what `igs send` sends, for curl and other machines.

Starlette and uvicorn come with dagster-webserver, so no extra web framework. Binds to
127.0.0.1 unless told otherwise; every request to /events needs
`Authorization: Bearer <IGS_API__TOKEN>`, compared in constant time, and the API refuses to
start without a token. A malformed event gets a 4xx with the reason and nothing is queued:

    401 missing or wrong token        413 body larger than IGS_API__MAX_BODY_BYTES
    400 body is not a JSON object     422 unknown event name or invalid data
    202 queued {event_id, name, key, message, known}   200 system.log written at once

`GET /health` (no token) answers `{"ok": true}` for container health checks.
"""

from __future__ import annotations

import json
import logging
import socket

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from igs_dagster.core.errors import PermanentError, SettingsError
from igs_dagster.core.events import EVENT_NAMES, parse_event
from igs_dagster.core.redact import redact
from igs_dagster.core.settings import Settings
from igs_dagster.intake import accept

MIN_TOKEN_CHARS = 16
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
            accepted = await run_in_threadpool(accept, event, settings)
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
        return socket.create_server((host, port), family=family, backlog=128)
    except (OSError, OverflowError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise SettingsError(f"cannot listen on {host}:{port}: {reason}") from None


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the API until SIGINT/SIGTERM. Prints `listening on http://HOST:PORT` once bound."""
    import uvicorn

    app = create_app(settings)  # no token, no server: checked before binding
    host = host or settings.api.host
    sock = bind(host, settings.api.port if port is None else port)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"igs api: listening on http://{shown}:{actual_port} (POST /events, GET /health)", flush=True)
    config = uvicorn.Config(app, log_level="info", server_header=False, date_header=False)
    uvicorn.Server(config).run(sockets=[sock])

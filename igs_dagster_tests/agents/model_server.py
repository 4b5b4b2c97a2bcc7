"""A scripted model server on 127.0.0.1 for the real agent CLIs (pi, claude, codex).

It speaks the three wire formats the CLIs use for their model provider, each streaming:

- Anthropic Messages (`POST /v1/messages`, SSE): claude through `ANTHROPIC_BASE_URL`
  (claude also sends `HEAD /` first: answered 200);
- OpenAI Responses (`POST /v1/responses`, SSE): codex through a custom provider in
  `$CODEX_HOME/config.toml` with `wire_api = "responses"`;
- OpenAI chat completions (`POST /v1/chat/completions`, SSE): pi through a provider in
  `~/.pi/agent/models.json` with `"api": "openai-completions"`.

A test `play`s a script: a list of turns, each a tool call (`read`, `write`, `edit`,
`bash`), final `text`, or a fault (`hang`: read the request and never answer; `stall`: send
the stream's first event and nothing more). Each model request that offers tools takes the
next turn; the tool call is translated to the tool the CLI offered in that very request
(claude's Read/Write/Edit/Bash, codex's exec_command/apply_patch, pi's read/write/edit/bash)
and an unknown tool is an error recorded in `errors`. Requests without tools (claude's side
calls, e.g. a title) get a short text and no turn. Every request is recorded (path, headers,
JSON body) for assertions. The server is threaded, binds an ephemeral port, and shuts itself
down after `max_life_s` even if a test forgets to.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Turn:
    kind: str  # read | write | edit | bash | text | hang | stall
    args: dict[str, Any] = field(default_factory=dict)


def read(path: str) -> Turn:
    return Turn("read", {"path": path})


def write(path: str, content: str) -> Turn:
    return Turn("write", {"path": path, "content": content})


def edit(path: str, old: str, new: str) -> Turn:
    return Turn("edit", {"path": path, "old": old, "new": new})


def bash(command: str) -> Turn:
    return Turn("bash", {"command": command})


def text(message: str) -> Turn:
    return Turn("text", {"text": message})


def call(name: str, args: dict[str, Any] | str) -> Turn:
    """A raw call of one CLI's own tool (e.g. claude's ToolSearch), passed through as is."""
    return Turn("call", {"name": name, "arguments": args})


def hang() -> Turn:
    return Turn("hang")


def stall() -> Turn:
    return Turn("stall")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes
    turn: Turn | None = None  # the scripted turn it was answered with

    @property
    def api(self) -> str:
        if self.path.startswith("/v1/messages"):
            return "anthropic"
        if self.path.startswith("/v1/responses"):
            return "responses"
        if self.path.startswith("/v1/chat/completions"):
            return "chat"
        return "other"

    def tool_names(self) -> list[str]:
        """Names of the tools offered in this request (all three formats)."""
        names = []
        for tool in (self.body or {}).get("tools") or []:
            if not isinstance(tool, dict):
                continue
            name = tool.get("name") or (tool.get("function") or {}).get("name") or tool.get("type")
            if name:
                names.append(name)
        return names

    def text(self) -> str:
        """The whole request body as text (system prompt, messages, tool results)."""
        return self.raw.decode("utf-8", "replace")

    def json_text(self) -> str:
        """Every string in the body, concatenated (escapes decoded): for substring checks."""
        out: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.body)
        return "\n".join(out)


# ------------------------------------------------------------------ tool call translation


def _patch_add(path: str, content: str) -> str:
    lines = "".join(f"+{line}\n" for line in content.splitlines())
    return f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n"


def _patch_update(path: str, old: str, new: str) -> str:
    minus = "".join(f"-{line}\n" for line in old.splitlines())
    plus = "".join(f"+{line}\n" for line in new.splitlines())
    return f"*** Begin Patch\n*** Update File: {path}\n@@\n{minus}{plus}*** End Patch\n"


def tool_call(api: str, turn: Turn, offered: list[str]) -> tuple[str, dict[str, Any] | str]:
    """(tool name, arguments) for `turn` in the CLI's own tools; a str argument = freeform."""
    a = turn.args
    if turn.kind == "call":
        return a["name"], a["arguments"]
    if api == "anthropic":  # Claude Code
        table = {
            "read": ("Read", {"file_path": a.get("path")}),
            "write": ("Write", {"file_path": a.get("path"), "content": a.get("content")}),
            "edit": (
                "Edit",
                {"file_path": a.get("path"), "old_string": a.get("old"), "new_string": a.get("new")},
            ),
            "bash": ("Bash", {"command": a.get("command"), "description": "scripted command"}),
        }
        return table[turn.kind]
    if api == "chat":  # pi
        table = {
            "read": ("read", {"path": a.get("path")}),
            "write": ("write", {"path": a.get("path"), "content": a.get("content")}),
            "edit": (
                "edit",
                {"path": a.get("path"), "edits": [{"oldText": a.get("old"), "newText": a.get("new")}]},
            ),
            "bash": ("bash", {"command": a.get("command")}),
        }
        return table[turn.kind]
    # codex: reads and commands through exec_command, file changes through apply_patch
    if turn.kind == "read":
        return "exec_command", {"cmd": f"cat {json.dumps(a['path'])}"}
    if turn.kind == "bash":
        return "exec_command", {"cmd": a["command"]}
    patch = (
        _patch_add(a["path"], a["content"])
        if turn.kind == "write"
        else _patch_update(a["path"], a["old"], a["new"])
    )
    return "apply_patch", patch


# ------------------------------------------------------------------ SSE bodies per format


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def anthropic_events(turn: Turn, ids: itertools.count, offered: list[str]) -> list[bytes]:
    n = next(ids)
    message = {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": "scripted",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    events = [_sse("message_start", {"type": "message_start", "message": message})]
    if turn.kind == "text":
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": turn.args["text"]}
        stop = "end_turn"
    else:
        name, args = tool_call("anthropic", turn, offered)
        block = {"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(args)}
        stop = "tool_use"
    events += [
        _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def responses_events(turn: Turn, ids: itertools.count, offered: list[str]) -> list[bytes]:
    n = next(ids)
    rid = f"resp_{n}"
    events = [
        _sse(
            "response.created",
            {"type": "response.created", "response": {"id": rid, "status": "in_progress"}},
        )
    ]
    if turn.kind == "text":
        item: dict[str, Any] = {
            "type": "message",
            "id": f"msg_{n}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": turn.args["text"], "annotations": []}],
        }
        added = {**item, "status": "in_progress", "content": []}
        events.append(
            _sse("response.output_item.added",
                 {"type": "response.output_item.added", "output_index": 0, "item": added})
        )
        events.append(
            _sse(
                "response.output_text.delta",
                {"type": "response.output_text.delta", "item_id": f"msg_{n}", "output_index": 0,
                 "content_index": 0, "delta": turn.args["text"]},
            )
        )
    else:
        name, args = tool_call("responses", turn, offered)
        if isinstance(args, str):
            if name in offered and not _is_function(offered, name):
                item = {"type": "custom_tool_call", "id": f"ctc_{n}", "call_id": f"call_{n}",
                        "name": name, "input": args, "status": "completed"}
            else:
                item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}",
                        "name": name, "arguments": json.dumps({"input": args}),
                        "status": "completed"}
        else:
            item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}",
                    "name": name, "arguments": json.dumps(args), "status": "completed"}
    events += [
        _sse("response.output_item.done",
             {"type": "response.output_item.done", "output_index": 0, "item": item}),
        _sse(
            "response.completed",
            {
                "type": "response.completed",
                "response": {
                    "id": rid,
                    "status": "completed",
                    "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 15},
                },
            },
        ),
    ]
    return events


_FUNCTION_KINDS: dict[str, str] = {}


def _is_function(offered: list[str], name: str) -> bool:
    return _FUNCTION_KINDS.get(name, "function") == "function"


def chat_events(turn: Turn, ids: itertools.count, offered: list[str]) -> list[bytes]:
    n = next(ids)
    base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": "scripted"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    if turn.kind == "text":
        events += [chunk({"content": turn.args["text"]}), chunk({}, "stop")]
    else:
        name, args = tool_call("chat", turn, offered)
        call = {"index": 0, "id": f"call_{n}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)}}
        events += [chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                              "total_tokens": 15}}
    events += [_sse(None, usage), _sse(None, "[DONE]")]
    return events


BUILDERS = {"anthropic": anthropic_events, "responses": responses_events, "chat": chat_events}


# ------------------------------------------------------------------ the server


class ModelServer:
    """Threaded scripted model server; use as a context manager or call start()/stop()."""

    def __init__(self, max_life_s: float = 1800.0) -> None:
        self.requests: list[Request] = []
        self.pages: dict[str, str] = {}  # GET path -> HTML (a "web page" for fetch tools)
        self.errors: list[str] = []
        self._script: list[Turn] = []
        self._default = text("done")
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._ids = itertools.count(1)
        self._max_life_s = max_life_s
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- script control
    def play(self, turns: list[Turn], default: Turn | None = None) -> None:
        """Start a new script (and a new record); `default` answers once the script is used up."""
        with self._lock:
            self._release.set()  # let go of hung handlers of the previous script
            self._release = threading.Event()
            self._script = list(turns)
            self._default = default or text("done")
            self.requests = []
            self.errors = []
            _FUNCTION_KINDS.clear()

    def model_requests(self, api: str | None = None) -> list[Request]:
        """Recorded requests that took a turn (offered tools), optionally of one format."""
        return [r for r in self.requests if r.turn is not None and (api is None or r.api == api)]

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- lifecycle
    def start(self) -> ModelServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:  # claude probes the base URL
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                server._record(self, b"")
                page = server.pages.get(self.path)
                if page is not None:
                    body, kind, status = page.encode(), "text/html; charset=utf-8", 200
                else:
                    models = {"object": "list", "data": [
                        {"id": "scripted", "object": "model", "owned_by": "tests"}]}
                    body, kind = json.dumps(models).encode(), "application/json"
                    status = 200 if self.path.split("?")[0].rstrip("/").endswith("/models") else 404
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size) if size else self._read_chunked()
                request = server._record(self, raw)
                server._answer(self, request)

            def _read_chunked(self) -> bytes:
                if "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
                    return b""
                data = b""
                while True:
                    line = self.rfile.readline()
                    n = int(line.strip().split(b";")[0] or b"0", 16)
                    if n == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(n)
                    self.rfile.readline()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        serve = threading.Thread(target=self._httpd.serve_forever, name="model-server", daemon=True)
        serve.start()
        timer = threading.Timer(self._max_life_s, self.stop)
        timer.daemon = True
        timer.start()
        self._threads = [serve]
        self._timer = timer
        return self

    def stop(self) -> None:
        self._release.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals
    def _record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> Request:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Request(handler.command, handler.path, dict(handler.headers.items()), body, raw)
        with self._lock:
            self.requests.append(request)
        return request

    def _next_turn(self, request: Request) -> tuple[Turn, threading.Event]:
        with self._lock:
            release = self._release
            if not request.tool_names():
                return text("ok"), release
            turn = self._script.pop(0) if self._script else self._default
            request.turn = turn
            return turn, release

    def _answer(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        api = request.api
        if api not in BUILDERS or (request.body or {}).get("stream") is False:
            self.errors.append(f"unexpected request {request.method} {request.path}")
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        turn, release = self._next_turn(request)
        if turn.kind == "hang":
            release.wait()
            handler.close_connection = True
            return
        offered = request.tool_names()
        if api == "responses":
            for tool in (request.body or {}).get("tools") or []:
                if isinstance(tool, dict) and tool.get("name"):
                    _FUNCTION_KINDS[tool["name"]] = tool.get("type", "function")
        if turn.kind not in ("text", "stall"):
            name, _ = tool_call(api, turn, offered)
            if name not in offered:
                self.errors.append(f"{api}: tool {name!r} not offered (offered: {offered})")
        events = [] if turn.kind == "stall" else BUILDERS[api](turn, self._ids, offered)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            if turn.kind == "stall":
                first = BUILDERS[api](text("..."), self._ids, offered)[0]
                handler.wfile.write(first)
                handler.wfile.flush()
                release.wait()
                return
            for event in events:
                handler.wfile.write(event)
            handler.wfile.flush()
        except OSError:
            pass

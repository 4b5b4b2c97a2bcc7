"""The webserver of `igs dev`, as a GraphQL client: for the CLI (standard library only, no
Dagster import, so a question answered by the running webserver costs ~0.1 s, not the 2 s
of `import dagster` and an instance).

`igs dev` records where its webserver listens in `<data>/webserver.json` (written once it
starts, removed on a clean stop). A stale file (a killed stack) costs one refused connect:
`query` then returns None and the caller reads the instance instead.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from igs_dagster.core.errors import IgsError
from igs_dagster.core.text import one_line

STATE_FILE = "webserver.json"
TIMEOUT_S = 5.0
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


class WebserverError(IgsError):
    """The webserver answered, but not with data (GraphQL errors, an error union, bad JSON)."""


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def base_url(host: str, port: int) -> str:
    """Where to reach a webserver bound to host:port from this machine."""
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def record(data_dir: Path, host: str, port: int, dagster_home: str) -> Path:
    """Write the state file (atomic): the URL, the supervisor's pid and its DAGSTER_HOME."""
    from igs_dagster.core.fsutil import atomic_write_text

    path = state_path(data_dir)
    atomic_write_text(path, json.dumps({"url": base_url(host, port), "pid": os.getpid(),
                                        "dagster_home": str(dagster_home)}) + "\n")
    return path


def forget(data_dir: Path) -> None:
    """Remove the state file if it is ours (a second stack may have replaced it)."""
    path = state_path(data_dir)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find(data_dir: Path, dagster_home: Path) -> str | None:
    """The recorded webserver URL of this deployment (same DAGSTER_HOME), or None."""
    try:
        state = json.loads(state_path(data_dir).read_text())
        url, home = state["url"], state["dagster_home"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        same = Path(home).resolve() == Path(dagster_home).resolve()
    except (OSError, TypeError):
        return None
    return url if same and isinstance(url, str) and url.startswith("http://") else None


def query(url: str, gql: str, variables: dict | None = None, timeout: float = TIMEOUT_S) -> dict | None:
    """POST a GraphQL document to `url`/graphql: its `data`, or None when nothing answers
    (refused, timed out, not HTTP). GraphQL errors raise WebserverError with one line."""
    body = json.dumps({"query": gql, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/graphql", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as err:
        payload = err.read()  # GraphQL errors may come with HTTP 400
        if not payload:
            raise WebserverError(f"webserver {url}: HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        answer = json.loads(payload)
    except ValueError:
        raise WebserverError(f"webserver {url}: not a GraphQL answer") from None
    if not isinstance(answer, dict):
        raise WebserverError(f"webserver {url}: not a GraphQL answer")
    if answer.get("errors"):
        first = answer["errors"][0]
        message = first.get("message") if isinstance(first, dict) else first
        raise WebserverError(f"webserver {url}: {one_line(message, 300)}")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise WebserverError(f"webserver {url}: no data in the answer")
    return data


def require(node: dict, typename: str) -> dict:
    """`node` if its __typename is `typename`, else WebserverError with its message (the
    `...OrError` unions: PythonError, RunNotFoundError, ...)."""
    if not isinstance(node, dict) or node.get("__typename") != typename:
        got = node.get("__typename") if isinstance(node, dict) else type(node).__name__
        message = node.get("message") if isinstance(node, dict) else None
        raise WebserverError(f"expected {typename}, got {got}" + (f": {one_line(message, 300)}" if message else ""))
    return node

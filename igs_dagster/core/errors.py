"""Error types whose message is shown to the user as one line.

`PermanentError` marks failures that retrying cannot fix (bad URL, 404, private video,
corrupt media): Dagster assets turn it into `dg.Failure(allow_retries=False)`.
Any other exception is treated as transient and retried by the step's RetryPolicy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class IgsError(Exception):
    """An error with a one-line, user-facing message."""


class PermanentError(IgsError):
    """Retrying cannot help: the input or the remote resource is wrong."""


class SettingsError(IgsError):
    """The configuration is missing or invalid."""


def error_chain(err: BaseException | None) -> Iterator[BaseException]:
    """The error and everything it wraps (yt-dlp's exc_info/cause, Python's __cause__ and
    __context__), each once."""
    seen: set[int] = set()
    todo: list[Any] = [err]
    while todo:
        exc = todo.pop()
        if not isinstance(exc, BaseException) or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        exc_info = getattr(exc, "exc_info", None)
        todo += [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(exc, "cause", None),
            exc.__cause__,
            exc.__context__,
        ]

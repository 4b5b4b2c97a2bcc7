"""Keep secrets out of logs: redact the values of secret-looking environment variables.

API keys reach agent CLIs through the environment, never argv. Whatever an agent prints,
and whatever goes into the system log or a run's metadata, passes through `redact` first:
every value of a variable whose name looks secret (`*_API_KEY`, `*_TOKEN`, `*_SECRET`,
`*PASSWORD*`, ...) is replaced by `[REDACTED:NAME]`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

# Values shorter than this are not treated as secrets: redacting "1" or "true" everywhere
# would shred the text and protect nothing.
MIN_SECRET_LEN = 6

_SECRET_SUFFIXES = (
    "_API_KEY",
    "APIKEY",
    "_TOKEN",
    "_SECRET",
    "_SECRET_KEY",
    "_ACCESS_KEY",
    "_PRIVATE_KEY",
    "_CREDENTIALS",
)
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET")
_SECRET_NAMES = {"API_KEY", "TOKEN", "SECRET"}


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name says its value is a secret."""
    upper = name.upper()
    return (
        upper in _SECRET_NAMES
        or upper.endswith(_SECRET_SUFFIXES)
        or any(part in upper for part in _SECRET_PARTS)
    )


def secret_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret-looking variables of `env` (default: os.environ), name -> value."""
    source = os.environ if env is None else env
    return {
        name: value
        for name, value in source.items()
        if isinstance(value, str) and len(value) >= MIN_SECRET_LEN and is_secret_name(name)
    }


class Redactor:
    """Replace known secret values in text; `max_len` tells streamers how much to hold back."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # value -> name; the longest value first so a secret containing another wins.
        by_value: dict[str, str] = {}
        for name, value in sorted(secrets.items()):
            if len(value) >= MIN_SECRET_LEN:
                by_value.setdefault(value, name)
        self._names = by_value
        ordered = sorted(by_value, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
        self.max_len = max((len(v) for v in ordered), default=0)
        self.max_bytes = max((len(v.encode("utf-8")) for v in ordered), default=0)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _replace(self, match: re.Match[str]) -> str:
        return f"[REDACTED:{self._names[match.group(0)]}]"

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self._replace, text)

    def contains_secret(self, data: bytes) -> bool:
        return any(value.encode("utf-8") in data for value in self._names)

    def split_safe(self, text: str) -> tuple[str, str]:
        """Split streamed `text` into (redacted part safe to emit, raw tail to keep for later).

        The kept tail is short enough that no secret can straddle the cut unseen: it is at
        most `max_len - 1` characters, or whatever follows the last complete match.
        """
        if self._pattern is None:
            return text, ""
        last_end = 0
        for match in self._pattern.finditer(text):
            last_end = match.end()
        cut = max(last_end, len(text) - (self.max_len - 1))
        return self(text[:cut]), text[cut:]

    def argv(self, argv: Iterable[str]) -> list[str]:
        return [self(str(arg)) for arg in argv]


@lru_cache(maxsize=32)
def _cached(items: frozenset[tuple[str, str]]) -> Redactor:
    return Redactor(dict(items))


def redactor(env: Mapping[str, str] | None = None) -> Redactor:
    """A Redactor for the secrets in `env` (default: the current os.environ)."""
    return _cached(frozenset(secret_env(env).items()))


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with the values of secret-looking variables of `env` (default os.environ) hidden."""
    return redactor(env)(text)

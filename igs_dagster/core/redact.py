"""Keep secrets out of logs: redact the values of secret-looking environment variables.

API keys reach agent CLIs through the environment, never argv. Whatever an agent prints,
and whatever goes into the system log or a run's metadata, passes through `redact` first:
every value of a variable whose name looks secret (`*_KEY`, `*_TOKEN`, `*_SECRET`,
`*_PASSWORD`, `*_PAT`, `*WEBHOOK*`, names added with `IGS_SECRET_NAMES` / `add_secret_names`),
every URL value carrying credentials (`postgres://user:pw@host`), and every value registered
with `register_secret` (the settings' own secrets, e.g. a token from the config file) is
replaced by `[REDACTED:NAME]`.

`child_env` is the one place that decides what environment a child (agent CLI, PRD check
command) gets: an allowlist plus the keys the chosen agent needs, never the API token or
other unrelated secrets.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

# Values shorter than this are not treated as secrets: redacting "1" or "true" everywhere
# would shred the text and protect nothing.
MIN_SECRET_LEN = 6

_SECRET_SUFFIXES = (
    "_KEY",
    "APIKEY",
    "_TOKEN",
    "_SECRET",
    "_PAT",
    "_PASSWORD",
    "_CREDENTIALS",
    "_DSN",
)
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "WEBHOOK", "CREDENTIAL")
_SECRET_NAMES = {"API_KEY", "TOKEN", "SECRET", "PAT", "KEY", "PASSWORD"}
_NOT_SECRET_NAMES = {"IGS_ARCHIVE__SFTP_KEY"}  # the path of a key file, not a key
EXTRA_NAMES_ENV = "IGS_SECRET_NAMES"  # comma-separated names or globs (`MY_*`), also a setting
# scheme://user:password@host - a URL that carries its own credentials is a secret whatever
# the variable is called (DATABASE_URL, REDIS_URL, ...)
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")

_extra_names: set[str] = set()
_registered: dict[str, str] = {}  # value -> name, secrets known by value (settings)


def add_secret_names(patterns: Iterable[str]) -> None:
    """Treat variables matching these names or globs (case-insensitive) as secrets too."""
    _extra_names.update(p.strip().upper() for p in patterns if p and p.strip())


def register_secret(name: str, value: str | None) -> None:
    """Redact `value` wherever it appears, whatever variable (or file) it came from."""
    if value and len(value) >= MIN_SECRET_LEN:
        _registered.setdefault(value, name)


def _extra_patterns() -> set[str]:
    from_env = os.environ.get(EXTRA_NAMES_ENV, "")
    return _extra_names | {p.strip().upper() for p in from_env.split(",") if p.strip()}


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name says its value is a secret."""
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES:
        return False
    return (
        upper in _SECRET_NAMES
        or upper.endswith(_SECRET_SUFFIXES)
        or any(part in upper for part in _SECRET_PARTS)
        or any(fnmatch.fnmatchcase(upper, pattern) for pattern in _extra_patterns())
    )


def is_secret_value(value: str) -> bool:
    """True for values that are secrets by their shape (a URL with a password)."""
    return bool(_URL_WITH_PASSWORD.match(value.strip()))


def secret_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret variables of `env` (default: os.environ) plus registered secrets, name -> value."""
    source = os.environ if env is None else env
    found = {
        name: value
        for name, value in source.items()
        if isinstance(value, str)
        and len(value) >= MIN_SECRET_LEN
        and (is_secret_name(name) or is_secret_value(value))
    }
    for value, name in _registered.items():
        if value not in found.values():
            found.setdefault(name, value)
    return found


# ---- least environment for children -------------------------------------------------------

_BASE_ALLOW = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR",
    "PWD", "COLORTERM", "NO_COLOR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "VIRTUAL_ENV", "UV_CACHE_DIR", "UV_PYTHON", "PYTHONPATH",
    "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE",
)
_BASE_ALLOW_PREFIXES = ("LC_", "XDG_")
# what each agent CLI reads: provider keys, base URLs and its own configuration
AGENT_ENV_PREFIXES: dict[str, tuple[str, ...]] = {
    "claude": ("ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_CLOUD_", "CLOUD_ML_", "VERTEX_"),
    "codex": ("OPENAI_", "CODEX_", "AZURE_OPENAI_"),
    "pi": (
        "PI_", "ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_", "OPENROUTER_", "GROQ_",
        "MISTRAL_", "XAI_", "CEREBRAS_", "DEEPSEEK_", "ZAI_", "AZURE_OPENAI_", "AWS_",
        "COPILOT_", "GITHUB_COPILOT_",
    ),
}
CHILD_ENV_ALLOW_ENV = "IGS_CHILD_ENV_ALLOW"  # more names for children, comma-separated


def child_env(
    tool: str | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for an agent CLI (`tool`) or a check command (`tool=None`).

    From `base` (default os.environ) only the allowlisted names, the prefixes the agent
    needs and names listed in IGS_CHILD_ENV_ALLOW pass; nothing named IGS_* does (the API
    token, the Postgres password). `extra` (chosen by the caller) is added as given.
    """
    source = os.environ if base is None else base
    allow = set(_BASE_ALLOW) | {
        n.strip() for n in source.get(CHILD_ENV_ALLOW_ENV, "").split(",") if n.strip()
    }
    prefixes = _BASE_ALLOW_PREFIXES + AGENT_ENV_PREFIXES.get(tool or "", ())
    env = {
        name: value
        for name, value in source.items()
        if not name.upper().startswith("IGS_")
        and (name in allow or name.upper().startswith(prefixes))
    }
    env.update(extra or {})
    return env


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

        Only a tail that could be the start of a secret is kept (at most `max_len - 1`
        characters, after the last complete match): no secret straddles the cut unseen, and
        a last line that is no secret's beginning goes out now, not when more output comes
        (an agent that prints "ready" and waits would otherwise show nothing).
        """
        if self._pattern is None:
            return text, ""
        last_end = 0
        for match in self._pattern.finditer(text):
            last_end = match.end()
        cut = len(text)
        for start in range(max(last_end, len(text) - (self.max_len - 1)), len(text)):
            tail = text[start:]
            if any(value.startswith(tail) for value in self._names):
                cut = start
                break
        return self(text[:cut]), text[cut:]

    def argv(self, argv: Iterable[str]) -> list[str]:
        return [self(str(arg)) for arg in argv]


@lru_cache(maxsize=32)
def _cached(items: frozenset[tuple[str, str]]) -> Redactor:
    return Redactor(dict(items))


def redactor(env: Mapping[str, str] | None = None) -> Redactor:
    """A Redactor for the secrets in `env` (default: the current os.environ) and the
    registered ones."""
    return _cached(frozenset(secret_env(env).items()))


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with the values of secret-looking variables of `env` (default os.environ) hidden."""
    return redactor(env)(text)

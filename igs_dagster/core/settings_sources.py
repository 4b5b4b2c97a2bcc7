"""Settings errors that point at their source: the `IGS_*` variable, or the config file and
line, of every bad value; a TOML syntax error named with its file; a misspelt `IGS_*` variable
(which pydantic-settings silently ignores) warned about with the closest known name.

`core/settings.py` defines the settings; this module only explains them. One line always:
several problems are joined with "; " (none is left out as "+1 more").
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

PREFIX = "IGS_"
# IGS_* names that are no settings and must not be warned about: read directly by igs, or
# docker/compose.yaml's own variables (docker/.env.example)
OTHER_NAMES = frozenset({
    "IGS_CONFIG", "IGS_DEBUG", "IGS_CHILD_ENV_ALLOW", "IGS_K8S_GPU",
    "IGS_IMAGE", "IGS_UID", "IGS_GID", "IGS_DOMAIN", "IGS_ACME_EMAIL", "IGS_API_BIND",
    "IGS_WEBSERVER_BIND", "IGS_BASIC_AUTH_USER", "IGS_BASIC_AUTH_HASH",
})
# the `igs_events` sensor's skip reason while the settings are invalid (read by `igs status`
# and `igs send --wait`, which must not import the sensor)
SENSOR_SETTINGS_INVALID = "settings invalid, nothing done this tick"


def _fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every settable path: top-level fields, each group, and each group's fields."""
    out = []
    for name, field in model.model_fields.items():
        out.append((*path, name))
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _fields(kind, (*path, name))
    return out


def known_variables() -> list[str]:
    from igs_dagster.core.settings import Settings

    return [PREFIX + "__".join(p).upper() for p in _fields(Settings)]


def _closest(name: str, known: list[str]) -> str | None:
    found = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.75)
    return found[0] if found else None


def misspelt_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per `IGS_*` variable that is no setting but looks like one (close to a
    known name, or nested with `__`); pydantic-settings ignores such names without a word."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    upper = {k.upper() for k in known} | OTHER_NAMES
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX) or name.upper() in upper:
            continue
        closest = _closest(name, known)
        if closest or "__" in name:
            warnings.append(f"{name} is not a setting and is ignored"
                            + (f" (did you mean {closest}?)" if closest else ""))
    return warnings


# ---- where a value came from -----------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("'\"").strip() for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted))


def toml_line(text: str, loc: tuple[str, ...]) -> int | None:
    """The 1-based line of `text` (TOML) that sets `loc` (or the table of it), if found."""
    table: tuple[str, ...] = ()
    best = None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TABLE.match(line)
        if header:
            table = _parts(header[1])
            if table == loc[:len(table)] and best is None and len(table) == len(loc):
                best = number  # the table itself is the setting (a whole group)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_parts(key[1]))
            if path == loc[:len(path)]:
                return number
    return best


def _env_source(loc: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    """The IGS_* variable that set `loc` (or a group of it, as JSON), if one did."""
    names = {k.upper(): k for k in environ}
    for n in range(len(loc), 0, -1):
        name = PREFIX + "__".join(loc[:n]).upper()
        if name in names:
            return names[name]
    return None


def _where(loc: tuple[str, ...], environ: Mapping[str, str], config: Path | None,
           config_text: str | None) -> str:
    dotted = ".".join(loc)
    variable = _env_source(loc, environ) if loc else None
    if variable:
        return variable
    if config is not None and config_text is not None and loc:
        line = toml_line(config_text, loc)
        return f"{config}" + (f" line {line}" if line else "") + f" ({dotted})"
    return PREFIX + "__".join(loc).upper() if loc else "settings"


def describe_error(err: ValidationError, config: Path | None,
                   environ: Mapping[str, str] | None = None) -> str:
    """`invalid setting <where>: <what>` for each error, `where` being the variable, or the
    config file with line and dotted name, that gave the bad value."""
    environ = os.environ if environ is None else environ
    try:
        config_text = config.read_text(encoding="utf-8") if config is not None else None
    except (OSError, UnicodeError):
        config_text = None
    known = known_variables()
    parts = []
    for item in err.errors():
        loc = tuple(str(p) for p in item.get("loc", ()))
        where = _where(loc, environ, config, config_text)
        message = item.get("msg", "invalid value").removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            closest = _closest(PREFIX + "__".join(loc).upper(), known)
            if closest and where.startswith(PREFIX):
                message = f"not a setting (did you mean {closest}?)"
            elif closest:
                message = f"not a setting (did you mean {'.'.join(closest[len(PREFIX):].lower().split('__'))}?)"
            else:
                message = "not a setting"
        parts.append(f"{where}: {message}")
    return "invalid setting " + "; ".join(parts)


def describe_unreadable(config: Path | None, err: Exception) -> str:
    """A config file that is not TOML (or not readable), named."""
    if config is None:
        return f"cannot read settings: {err}"
    return f"config file {config}: {err}"


# ---- settings for a diagnosis ----------------------------------------------------------------

def _drop(values: dict, loc: tuple[str, ...]) -> bool:
    """Remove `loc` (or the nearest part of it that exists) from nested `values`."""
    for n in range(len(loc), 0, -1):
        node = values
        for part in loc[:n - 1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict) and loc[n - 1] in node:
            del node[loc[n - 1]]
            return True
    return False


def lenient_settings():
    """The settings with every invalid value left out (its default used instead), for
    `igs status` to look at a deployment whose settings are broken: from the same sources
    (config file unless it is not TOML, then IGS_* variables over it), validated alone."""
    from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

    from igs_dagster.core.errors import SettingsError
    from igs_dagster.core.settings import Settings, config_file_path

    class _Given(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, **_other):
            return (init_settings,)

    values: dict = {}
    try:
        config = config_file_path()
        if config is not None:
            values = TomlConfigSettingsSource(Settings, toml_file=config)()
    except (SettingsError, OSError, ValueError):
        values = {}
    for name, value in EnvSettingsSource(Settings)().items():
        if isinstance(value, dict) and isinstance(values.get(name), dict):
            values[name] = {**values[name], **value}
        else:
            values[name] = value
    for _ in range(10):
        try:
            return _Given(**values)
        except ValidationError as err:
            if not any([_drop(values, tuple(str(p) for p in e.get("loc", ()))) for e in err.errors()]):
                break
    return _Given()
